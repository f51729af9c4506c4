"""Everything that needs a GPU, in one command: `python -m bench gpu --out DIR`.

The project is built and tested on machines without a GPU; almost every user has one. This
runs, on the first CUDA device it finds, every CUDA-only test (pytest marker `gpu`) and the GPU
acceptance figures of the project: synthesis latency (256 px channel multiplier 1 and 1024 px
config-f; eager fp32, compiled fp16, TensorRT fp16 where installed; CUDA events), the live loop
with the frame graph on a paced clip, avatar creation at 256 px, and GAN training images/s.
Each item runs in its own process with a time budget, so a hang or a crash is reported, not
fatal. Results: DIR/report.json and DIR/report.md, each item passed, failed (with the
traceback) or skipped (with the reason).

Without a GPU every GPU item is skipped, saying so, and the same orchestration runs on the CPU
with tiny sizes (the "cpu dry run" items): the command itself is tested, and no GPU figure is
produced.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.records import machine
from models.errors import first_line

CUDA_ITEMS = ("gpu tests", "synthesis", "live loop", "avatar creation", "gan training")


@dataclass
class Item:
    name: str
    budget_s: int          # on a GPU; the dry run gets the same budget
    run: object            # (ctx) -> figures dict


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for report.json, report.md and each item's output")
    p.add_argument("--media", default="../shared/media", help="folder of the clips and portraits")
    p.add_argument("--item", help=argparse.SUPPRESS)       # internal: run one item in this process
    p.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)


# -- the items: each returns its figures; tiny sizes in the dry run --------------------------------------------
def _bench(module, argv: list[str]) -> dict:
    """Run one of the project's benchmarks with these arguments; its record."""
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    return module.run(p.parse_args(argv))


def gpu_tests(ctx) -> dict:
    tests = Path(__file__).resolve().parents[1] / "tests"
    if not tests.is_dir():
        raise Skipped(f"no tests/ folder beside the bench package ({tests}); run from a checkout of the project")
    xml = Path(ctx.out) / "gpu-tests.xml"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                             f"--junitxml={xml}", str(tests)], capture_output=True, text=True, cwd=tests.parent)
    cases = junit_cases(xml)
    if not cases:
        raise RuntimeError(f"pytest ran no gpu test (exit {result.returncode}):\n{result.stdout[-3000:]}")
    failed = [c for c in cases if c["status"] == "failed"]
    if failed:
        raise RuntimeError("\n\n".join(f"{c['name']}:\n{c['detail']}" for c in failed))
    return {"tests": len(cases), "passed": sum(c["status"] == "passed" for c in cases),
            "skipped": {c["name"]: c["detail"] for c in cases if c["status"] == "skipped"}}


def junit_cases(path: Path) -> list[dict]:
    import xml.etree.ElementTree as ET
    if not path.is_file():
        return []
    out = []
    for case in ET.parse(path).iter("testcase"):
        status, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, detail = "failed", (child.text or child.get("message") or "")[-4000:]
            elif child.tag == "skipped":
                status, detail = "skipped", child.get("message", "")
        out.append({"name": f"{case.get('classname')}::{case.get('name')}", "status": status, "detail": detail})
    return out


def synthesis(ctx) -> dict:
    """Every installed backend in one alternating run per architecture (eager, compiled, TensorRT, ONNX Runtime)."""
    from bench import synth_latency
    from live.engines.devices import BackendUnavailable
    archs = ("fixture128",) if ctx.dry else ("vox256", "1024-cm2")
    rows = {}
    for arch in archs:
        try:
            records = _bench(synth_latency, ["--generator", arch,
                                             "--backend", "eager:fp32,compiled:fp32" if ctx.dry else "installed",
                                             "--iters", "3" if ctx.dry else "100", "--warmup", "1" if ctx.dry else "10",
                                             "--json", str(Path(ctx.out) / "synth.json")])
        except BackendUnavailable as e:
            rows[arch] = f"skipped: {first_line(e, None)}"
            continue
        for r in records:
            rows[f"{arch} {r['backend']} {r['precision']}"] = {
                k: r[k] for k in ("median_ms", "p99_ms", "x_slower_than_fastest", "psnr_vs_eager_fp32_db", "build_s",
                                  "timer", "cuda_graph")}
        for line in records[0]["skipped"]:
            rows[f"{arch} {line.split(':')[0]} {line.split(':')[1]}"] = f"skipped: {line.split(': ', 1)[1]}"
    return rows


def live_loop(ctx) -> dict:
    from bench import pipeline_latency
    r = _bench(pipeline_latency, ["--arch", "fixture128" if ctx.dry else "vox256", "--source",
                                  str(Path(ctx.media) / "lp_d6.mp4"), "--frames", "6" if ctx.dry else "600",
                                  "--backend", "eager" if ctx.dry else "compiled", "--size", "64x64" if ctx.dry else "512x512",
                                  "--plot", str(Path(ctx.out) / "live_loop.png"), "--json", str(Path(ctx.out) / "loop.json")])
    return {"fps": round(r["fps"], 1), "frames": r["written"], "dropped": r["dropped"],
            "gpu_work_per_frame_ms (render median)": round(r["stages"]["render"]["median_ms"], 2),
            "added_latency_ms": {k: round(r["stages"]["added"][k], 1) for k in ("median_ms", "p99_ms")}}


def avatar_creation(ctx) -> dict:
    import torch

    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig
    from live.avatar.pti import TuningConfig
    from models.checkpoint import random_generator
    from models.stylegan2 import STANDARD_ARCHS
    device = "cpu" if ctx.dry else "cuda"
    G = random_generator(STANDARD_ARCHS["fixture128" if ctx.dry else "vox256"]).to(device)
    steps = (2, 2) if ctx.dry else (InversionConfig().steps, TuningConfig().steps)
    opts = AvatarOptions(framing="voxceleb", inversion=InversionConfig(steps=steps[0]),
                         tuning=TuningConfig(steps=steps[1]), progress=False)
    start = time.perf_counter()
    _, report = create_avatar(Path(ctx.media) / "portrait_vermeer.jpg", G, opts)
    if device == "cuda":
        torch.cuda.synchronize()
    return {"resolution": G.resolution, "inversion_steps": steps[0], "tuning_steps": steps[1],
            "seconds": round(time.perf_counter() - start, 1),
            "stages_s": {k: round(v, 1) for k, v in report.seconds.items()}}


def gan_training(ctx) -> dict:
    from live.gan.dataset import DatasetOptions, build_dataset
    from live.gan.train import Trainer
    from live.gan.train_config import TrainConfig
    size = 64 if ctx.dry else 256
    data = Path(ctx.out) / "gan-data"
    build_dataset([str(Path(ctx.media) / "lp_d0.mp4")], str(data),
                  DatasetOptions(size=size, framing="voxceleb", max_frames=12 if ctx.dry else 78))
    cfg = TrainConfig(data=str(data), out=str(Path(ctx.out) / "gan-run"), kimg=0.008 if ctx.dry else 0.64,
                      batch=4 if ctx.dry else 16, snapshot_kimg=100, workers=0 if ctx.dry else 2,
                      device="cpu" if ctx.dry else "cuda",
                      **({"channel_multiplier": 1, "channel_max": 32, "style_dim": 32, "n_mlp": 2} if ctx.dry else {}))
    trainer = Trainer(cfg)
    try:
        report = trainer.run(progress=False)
    finally:
        trainer.close()
    return {"resolution": size, "batch": cfg.batch, "steps": report.steps, "images_per_second": report.images_per_second}


class Skipped(Exception):
    """An item that cannot run here; the message says why."""


ITEMS = (Item("gpu tests", 180, gpu_tests), Item("synthesis", 150, synthesis), Item("live loop", 90, live_loop),
         Item("avatar creation", 150, avatar_creation), Item("gan training", 90, gan_training))


# -- orchestration ----------------------------------------------------------------------------------------------
def run_item(args: argparse.Namespace) -> None:
    """In the child process: run one item, write its result file."""
    item = next(i for i in ITEMS if i.name == args.item)
    result = {"item": item.name, "dry": args.dry}
    start = time.perf_counter()
    try:
        result.update(status="passed", figures=item.run(args))
    except Skipped as e:
        result.update(status="skipped", reason=str(e))
    except BaseException:
        result.update(status="failed", traceback=traceback.format_exc()[-6000:])
    result["seconds"] = round(time.perf_counter() - start, 1)
    _item_file(args.out, item.name, args.dry).write_text(json.dumps(result, indent=1, default=str))


def _item_file(out: str, name: str, dry: bool) -> Path:
    return Path(out) / "items" / (("dry-" if dry else "") + name.replace(" ", "-") + ".json")


def spawn(item: Item, args: argparse.Namespace, dry: bool) -> dict:
    cmd = [sys.executable, "-m", "bench", "gpu", "--out", args.out, "--media", args.media, "--item", item.name]
    cmd += ["--dry"] if dry else []
    path = _item_file(args.out, item.name, dry)
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=item.budget_s,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        return {"item": item.name, "dry": dry, "status": "failed", "seconds": item.budget_s,
                "traceback": f"over its time budget of {item.budget_s} s"}
    if not path.is_file():
        return {"item": item.name, "dry": dry, "status": "failed", "seconds": round(time.perf_counter() - start, 1),
                "traceback": f"the item's process ended (exit {proc.returncode}) without a result:\n{proc.stderr[-4000:]}"}
    return json.loads(path.read_text())


def run(args: argparse.Namespace) -> dict:
    if args.item:
        run_item(args)
        return {}
    import torch
    out = Path(args.out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    gpu = torch.cuda.is_available()
    results = []
    for item in ITEMS:
        if gpu:
            results.append(spawn(item, args, dry=False))
        else:
            results.append({"item": item.name, "dry": False, "status": "skipped", "seconds": 0.0,
                            "reason": f"no CUDA device (torch {torch.__version__}, CUDA build: "
                                      f"{torch.version.cuda or 'none'}): no GPU figure produced"})
    if not gpu:
        dry = [spawn(item, args, dry=True) for item in ITEMS]
        for r in dry:
            r["item"] = f"cpu dry run: {r['item']}"
        ok = all(r["status"] in ("passed", "skipped") for r in dry)
        results += dry + [{"item": "cpu dry run", "dry": True, "status": "passed" if ok else "failed",
                           "seconds": round(sum(r["seconds"] for r in dry), 1),
                           "reason": "every item's orchestration ran on the CPU with tiny sizes"}]
    report = {"bench": "gpu", "gpu": torch.cuda.get_device_name() if gpu else None, "machine": machine(),
              "seconds": round(time.perf_counter() - start, 1), "items": results}
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))
    if any(r["status"] == "failed" for r in results):
        raise SystemExit(1)
    return report


def markdown(report: dict) -> str:
    where = report["gpu"] or "no GPU: every GPU item skipped, no GPU figure produced"
    lines = [f"# python -m bench gpu: {where}", "", f"{report['machine'].get('cpu')}, torch "
             f"{report['machine'].get('torch')}, {report['seconds']} s", "",
             "| item | status | seconds | figures or reason |", "| --- | --- | --- | --- |"]
    for r in report["items"]:
        detail = r.get("reason") or (json.dumps(r["figures"], default=str) if r.get("figures") is not None else "")
        if r["status"] == "failed":
            detail = (r.get("traceback") or "").strip().splitlines()[-1][:200]
        lines.append(f"| {r['item']} | {r['status']} | {r['seconds']} | {detail.replace('|', '/')} |")
    failed = [r for r in report["items"] if r["status"] == "failed"]
    for r in failed:
        lines += ["", f"## {r['item']}: failed", "", "```", r.get("traceback", ""), "```"]
    return "\n".join(lines) + "\n"
