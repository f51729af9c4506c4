"""Benchmark records: the machine they ran on, and a JSON file (a list, appended to). Tables: live.cli.table.

Benchmark outputs (records, plots, strips) go to a results folder outside the source tree by default
(`results_dir`: $LIVE_BENCH_RESULTS, else `bench` in the user's data folder), so a benchmark never
writes over the figures and images kept in bench/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

import torch


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def results_dir() -> Path:
    """Where benchmarks write by default: $LIVE_BENCH_RESULTS, else `bench` in the user's data folder."""
    from live.paths import data_dir
    return Path(os.environ.get("LIVE_BENCH_RESULTS") or data_dir() / "bench")


def default_json() -> str:
    return str(results_dir() / "results.json")


def append_json(path: str | Path, record: dict) -> Path:
    """Append `record` (stamped with the time) to the JSON list at `path`, atomically. A file that is not
    such a list (damaged, or someone else's) is never replaced silently: it is kept aside under a new
    name, and a line says where."""
    from models.atomic_files import write_text_atomic
    path = Path(path)
    records = []
    if path.is_file():
        try:
            records = json.loads(path.read_text())
            if not isinstance(records, list):
                raise ValueError("not a JSON list")
        except ValueError as e:     # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
            stamp, n = f"{dt.datetime.now():%Y%m%d-%H%M%S}", 0
            while (aside := path.with_name(f"{path.name}.damaged-{stamp}" + (f"-{n}" if n else ""))).exists():
                n += 1
            path.replace(aside)
            print(f"note: {path} was not a readable benchmark history ({str(e).splitlines()[0][:120]}); kept it "
                  f"as {aside}, started a new one")
            records = []
    record = {"when": dt.datetime.now().isoformat(timespec="seconds"), **record}
    records.append(record)
    write_text_atomic(path, json.dumps(records, indent=1))
    return path
