"""Everything that needs a GPU, in one command: `python -m bench gpu --out DIR --carry .gpu`.

The project is built and tested on machines without a GPU; almost every user has one. This runs, on
the first CUDA device, what users run there and checks what it produces (bench/gpu_items.py):
  gpu tests        every CUDA-only test (marker `gpu`), the key ones required to pass, not skip
  synthesis        eager fp32 vs compiled fp16/bf16, median and p99 by CUDA events, PSNR against fp32
                   bounded on the trained fixture (opt-in items: TensorRT with --tensorrt, 1024 px with --hires)
  avatar creation  an avatar made on the GPU with directions and identity limits; 256 px timing
  live loop        `live run` on that avatar with the frame graph, paced by a recorded driver, frames
                   checked for content; the paper's 256 px architecture for speed
  gan training     images/s of `live gan train` at 256 px
Inputs that need the face tracker (MediaPipe, absent on GPU machines with numpy 2) come recorded in
the carry set (`python -m bench gpu-carry`, bench/gpu_carry.py). Each item runs in its own process
group with a time budget, under one deadline for the whole run (--deadline, 450 s): an item over
its budget is killed with everything it started, items past the deadline are reported as not run,
and report.json and report.md are rewritten after every item, so a run cut short still reports.

Without a GPU every GPU item is skipped, saying so, and the same items run on the CPU with tiny
sizes (the "cpu dry run"): the command itself is tested, and no GPU figure is produced.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench import gpu_items, gpu_live_loop
from bench.records import machine
from models.atomic_files import write_text_atomic

DEADLINE_S = 450            # the run without opt-ins, after Python and CUDA start: under 8 minutes in all
REPORT_RESERVE_S = 5        # kept back from the last item for writing the report


@dataclass
class Item:
    name: str
    budget_s: int          # on a GPU; the dry run gets the same budget
    run: object            # (ctx) -> figures dict


ITEMS = (Item("gpu tests", 100, gpu_items.gpu_tests), Item("synthesis", 130, gpu_items.synthesis),
         Item("avatar creation", 70, gpu_items.avatar_creation), Item("live loop", 105, gpu_live_loop.live_loop),
         Item("gan training", 40, gpu_items.gan_training))
# Opt-in (--hires, --tensorrt): each its own item and budget, added to the deadline only when asked for
# (a first TensorRT build takes minutes).
OPT_IN = {"hires": Item("synthesis 1024 px", 150, gpu_items.synthesis_hires),
          "tensorrt": Item("tensorrt", 420, gpu_items.tensorrt)}


def items_for(args: argparse.Namespace) -> list[Item]:
    return list(ITEMS) + [item for flag, item in OPT_IN.items() if getattr(args, flag, False)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for report.json, report.md and each item's output and log")
    p.add_argument("--carry", default=".gpu", help="the carry set (python -m bench gpu-carry); on a machine "
                   "without it and without a GPU, a small one is made in OUT/carry (needs the tracker)")
    p.add_argument("--media", default="../shared/media", help="the shared clips and portraits (to make a carry set)")
    p.add_argument("--fixtures", default="../shared/fixtures", help="the shared fixtures (to make a carry set)")
    p.add_argument("--deadline", type=float, default=None,
                   help=f"seconds for the whole run (default {DEADLINE_S}, plus each opt-in item's budget)")
    p.add_argument("--hires", action="store_true", help="also time the 1024 px architecture")
    p.add_argument("--tensorrt", action="store_true", help="also build and time TensorRT (minutes on first use)")
    p.add_argument("--item", help=argparse.SUPPRESS)       # internal: run one item in this process
    p.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)


# -- one item, in its own process -----------------------------------------------------------------------------
def run_item(args: argparse.Namespace) -> None:
    item = next(i for i in items_for(args) if i.name == args.item)
    result = {"item": item.name, "dry": args.dry}
    start = time.perf_counter()
    try:
        result.update(status="passed", figures=item.run(args))
    except gpu_items.Skipped as e:
        result.update(status="skipped", reason=str(e))
    except gpu_items.ItemFailed as e:
        result.update(status="failed", figures=e.figures, traceback=f"check failed: {e}")
    except BaseException:
        result.update(status="failed", traceback=traceback.format_exc()[-6000:])
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_text_atomic(_item_file(args.out, item.name, args.dry), json.dumps(result, indent=1, default=str))


def _item_file(out: str, name: str, dry: bool) -> Path:
    return Path(out) / "items" / (("dry-" if dry else "") + name.replace(" ", "-") + ".json")


def spawn(item: Item, args: argparse.Namespace, dry: bool, budget_s: float) -> dict:
    """Run one item in a new process group; past its budget the whole group is killed."""
    cmd = [sys.executable, "-m", "bench", "gpu", "--out", args.out, "--carry", args.carry, "--item", item.name]
    cmd += ["--dry"] * dry + ["--hires"] * args.hires + ["--tensorrt"] * args.tensorrt
    path = _item_file(args.out, item.name, dry)
    path.unlink(missing_ok=True)
    log = path.with_suffix(".log")
    start = time.perf_counter()
    partial = path.with_suffix(".partial.json")
    partial.unlink(missing_ok=True)
    returncode = run_process_group(cmd, budget_s, log, item_environment(args))
    if returncode is None:
        return {"item": item.name, "dry": dry, "status": "failed", "seconds": round(budget_s, 1),
                "figures": json.loads(partial.read_text()) if partial.is_file() else None,
                "traceback": f"over its time budget of {budget_s:.0f} s: killed with its process group (log: {log})"}
    if not path.is_file():
        tail = log.read_text(errors="replace")[-4000:]
        return {"item": item.name, "dry": dry, "status": "failed", "seconds": round(time.perf_counter() - start, 1),
                "traceback": f"the item's process ended (exit {returncode}) without a result:\n{tail}"}
    return json.loads(path.read_text())


def run_process_group(cmd: list[str], budget_s: float, log: Path, env: dict | None = None) -> int | None:
    """Run cmd as the leader of a new process group, output to `log`; its exit status, or None when it ran
    past `budget_s` and the whole group (it and everything it started: compile workers, data loaders)
    was killed."""
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            code = proc.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            code = None
        try:   # over time: the whole group; done: whatever it left running (no item outlives its slot)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return code


def item_environment(args: argparse.Namespace) -> dict:
    out = Path(args.out).resolve()
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "LIVE_SHARED": str(Path(args.carry).resolve() / "shared"),   # the tests' fixtures
            "LIVE_HOME": str(out / "live-home"),                          # caches of this run only
            # one compile cache for every item: Triton kernels and graphs built once are reused by the next
            "TORCHINDUCTOR_CACHE_DIR": str(out / "inductor-cache")}


# -- the run ------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    if args.item:
        run_item(args)
        return {}
    import torch
    start = time.perf_counter()
    out = Path(args.out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.is_available()
    items = items_for(args)
    if args.deadline is None:
        args.deadline = DEADLINE_S + sum(item.budget_s for item in items[len(ITEMS):])
    report = {"bench": "gpu", "gpu": torch.cuda.get_device_name() if gpu else None, "machine": machine(),
              "deadline_s": args.deadline, "carry": str(args.carry), "seconds": 0.0, "items": []}
    try:
        problem = prepare_carry(args, gpu)
        report["carry"] = str(args.carry)
        if problem:
            report["items"].append({"item": "carry set", "dry": not gpu, "status": "failed", "seconds": 0.0,
                                    "traceback": problem})
            return report
        for item in items:
            if gpu:
                report["items"].append(_timed(item, args, False, start))
            else:
                report["items"].append({"item": item.name, "dry": False, "status": "skipped", "seconds": 0.0,
                                        "reason": f"no CUDA device (torch {torch.__version__}, CUDA build: "
                                                  f"{torch.version.cuda or 'none'}): no GPU figure produced"})
            write_report(out, report, start)
        if not gpu:
            dry = []
            for item in items:
                dry.append(_timed(item, args, True, start))
                dry[-1]["item"] = f"cpu dry run: {item.name}"
                report["items"].append(dry[-1])
                write_report(out, report, start)
            ok = all(r["status"] in ("passed", "skipped") for r in dry)
            report["items"].append({"item": "cpu dry run", "dry": True, "status": "passed" if ok else "failed",
                                    "seconds": round(sum(r["seconds"] for r in dry), 1),
                                    "reason": "every item ran on the CPU with tiny sizes"})
    finally:
        write_report(out, report, start)
        print(markdown(report))
    if any(r["status"] == "failed" for r in report["items"]):
        raise SystemExit(1)
    return report


def _timed(item: Item, args, dry: bool, start: float) -> dict:
    left = args.deadline - (time.perf_counter() - start) - REPORT_RESERVE_S
    if left < 10:
        return {"item": item.name, "dry": dry, "status": "failed", "seconds": 0.0,
                "traceback": f"not run: the run's deadline of {args.deadline:.0f} s was reached"}
    return spawn(item, args, dry, min(item.budget_s, left))


def prepare_carry(args: argparse.Namespace, gpu: bool) -> str | None:
    """The carry set given (checked), or one made here where the tracker and the shared data are: small for a
    CPU dry run, full on a GPU. None when ready; else what is wrong and what to do."""
    from bench.gpu_carry import CARRY_LIMIT_MIB, build
    manifest = Path(args.carry) / "MANIFEST.json"
    if manifest.is_file():
        try:
            total = json.loads(manifest.read_text())["total_mib"]
        except (ValueError, KeyError) as e:
            return f"{manifest}: unreadable ({e}); make the carry set again: python -m bench gpu-carry --out {args.carry}"
        if total > CARRY_LIMIT_MIB:
            return f"the carry set at {args.carry} is {total} MiB, over its {CARRY_LIMIT_MIB:.0f} MiB limit"
        return None
    made = str(Path(args.out) / "carry")
    try:
        print(f"no carry set at {args.carry}: making {'one' if gpu else 'a small one'} in {made}")
        build(Path(made), Path(args.media), Path(args.fixtures), wheels=False, small=not gpu)
    except (ImportError, OSError, RuntimeError, SystemExit) as e:
        return (f"no carry set at {args.carry}, and none can be made here ({type(e).__name__}: {e}); make it where "
                f"the face tracker and the shared data are (python -m bench gpu-carry --out {args.carry}) and bring "
                f"it along (README, 'On a GPU')")
    args.carry = made
    return None


def write_report(out: Path, report: dict, start: float) -> None:
    report["seconds"] = round(time.perf_counter() - start, 1)
    for name, text in (("report.json", json.dumps(report, indent=1, default=str)), ("report.md", markdown(report))):
        write_text_atomic(out / name, text)


def markdown(report: dict) -> str:
    where = report["gpu"] or "no GPU: every GPU item skipped, no GPU figure produced"
    lines = [f"# python -m bench gpu: {where}", "", f"{report['machine'].get('cpu')}, torch "
             f"{report['machine'].get('torch')}, CUDA {report['machine'].get('cuda')}, {report['seconds']} s "
             f"(deadline {report.get('deadline_s')} s)", "",
             "| item | status | seconds | figures or reason |", "| --- | --- | --- | --- |"]
    for r in report["items"]:
        detail = r.get("reason") or (json.dumps(r["figures"], default=str) if r.get("figures") is not None else "")
        if r["status"] == "failed":
            why = (r.get("traceback") or "").strip().splitlines()
            detail = (why[-1] if why else "failed, no reason recorded")[:300]
        lines.append(f"| {r['item']} | {r['status']} | {r['seconds']} | {detail.replace('|', '/')} |")
    for r in report["items"]:
        if r["status"] == "failed":
            lines += ["", f"## {r['item']}: failed", "", "```", r.get("traceback") or "(no traceback)", "```"]
            if r.get("figures"):
                lines += ["", "Figures before the failure:", "", "```", json.dumps(r["figures"], indent=1, default=str),
                          "```"]
    return "\n".join(lines) + "\n"
