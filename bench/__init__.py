"""Latency benchmarks: `python -m bench synth ...`. Results go to a JSON file and a table."""
