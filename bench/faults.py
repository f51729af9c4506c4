"""Faults injected mid-run, and what the user is left with (`python -m bench faults`).

Each fault of bench/fault_scenarios.py (the camera lost and back, Ctrl-C while it is lost, a disk
that fills under the file sink, /dev/full, a virtual camera whose device goes, a sink whose close
raises, a tracker that hangs) and the SIGKILLs of bench/kill_writes.py (avatar, directions, engine
cache, config written while killed at random moments). Per fault: frames delivered during and
after it, whether the run recovered, what was lost (only what the fault itself made impossible),
and the first line the user saw about it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.records import append_json, default_json, machine, results_dir
from live.cli.table import print_table

LOOP_FAULTS = ("camera", "camera-raises", "ctrl-c", "disk-full", "dev-full", "sink-gone", "close-raises",
               "tracker-hangs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--media", default="../shared/media")
    p.add_argument("--fixture", default="../shared/fixtures/face128.pt", help="generator for directions and engines")
    p.add_argument("--only", nargs="*", choices=LOOP_FAULTS, help="these loop faults only (default: all; none "
                                                                   "given: only the SIGKILLs)")
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs per written file kind (0: none)")
    p.add_argument("--json", default=default_json())


def loop_fault(name: str, media: Path, work: Path) -> dict:
    from bench import fault_scenarios as f
    run = {"camera": lambda: f.camera_outage(media), "camera-raises": lambda: f.camera_outage(media, raise_on_read=True),
           "ctrl-c": lambda: f.ctrl_c_during_outage(media), "disk-full": lambda: f.disk_fills(work / "cut.mp4"),
           "dev-full": f.dev_full, "sink-gone": lambda: f.sink_raises(media),
           "close-raises": lambda: f.closes_in_order(media), "tracker-hangs": lambda: f.tracker_hangs(media)}[name]
    result = run()
    result.pop("report", None)
    result.pop("stats", None)
    return result


def first_message(lines: list[str]) -> str:
    """The first warning or error line about the fault (the demo's own notices left out), without time and level."""
    import re
    for line in lines:
        m = re.match(r"^(?:\d\d:\d\d:\d\d )?(?:ERROR|WARNING)\s*:?\s*(.*)$", line)
        if m and "bundled demo painting" not in line and "no camera found" not in line:
            return m.group(1)[:150]
    return "-"


def run(args: argparse.Namespace) -> dict:
    from bench.kill_writes import run_all
    media, rows, results = Path(args.media), [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in LOOP_FAULTS if args.only is None else args.only:
            r = loop_fault(name, media, Path(tmp))
            results.append(r)
            rows.append({"fault": r["fault"], "during": r.get("during", "-"), "after": r.get("after", "-"),
                         "recovered": "yes" if r["recovered"] else "NO", "lost": r.get("lost", "-"),
                         "message": first_message(r.get("messages", []))})
        if args.kills:
            for r in run_all(media, Path(args.fixture), results_dir() / "kills", args.kills):
                results.append(r)
                rows.append({"fault": r["fault"], "during": f"{r['inside_a_write']} kills inside a write",
                             "after": "next run " + ("failed " + str(len(r["next_run_failed"])) + "x"
                                                     if r["next_run_failed"] else "succeeded every time"),
                             "recovered": "yes" if r["recovered"] else "NO",
                             "lost": (f"{len(r['broken_files'])} broken files" if r["broken_files"] else
                                      "nothing: no file under a final name failed to load")
                             + (f", {r['temporary_files_left']} temporary files left" if r["temporary_files_left"] else ""),
                             "message": "-"})
    record = {"bench": "faults", "results": results, "machine": machine()}
    append_json(args.json, record)
    print_table("faults injected mid-run: what was delivered, what was lost, what the user saw", rows,
                [("fault", "fault"), ("during", "during"), ("after", "after"), ("recovered", "recovered"),
                 ("lost", "lost"), ("message", "message")])
    return record
