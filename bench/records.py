"""Benchmark records: the machine they ran on, and a JSON file (a list, appended to). Tables: live.cli.table."""

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


def append_json(path: str | Path, record: dict) -> Path:
    path = Path(path)
    records = []
    if path.is_file():
        try:
            records = json.loads(path.read_text())
        except json.JSONDecodeError:
            records = []
    record = {"when": dt.datetime.now().isoformat(timespec="seconds"), **record}
    records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1))
    return path
