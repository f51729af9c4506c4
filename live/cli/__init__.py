"""The `live` command line: generated from option dataclasses, one module per command group."""

from live.cli.main import build_parser, entry, main

__all__ = ["build_parser", "entry", "main"]
