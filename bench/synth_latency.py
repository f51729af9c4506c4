"""Synthesis latency: W+ in, image on the device out, every installed backend in one alternating run.

Machines are noisy: a backend timed a minute after another meets other load. So all variants
(backend and precision) are built first, then timed in rounds, each round every variant a few
calls, in an order shuffled every round; the ratios come from the same minutes. On CUDA the
torch backends are timed by CUDA events and onnxruntime, which blocks until its stream is done,
by what the same events see around the blocking call (its wall time). Every variant's output is
compared with eager fp32 on the same W+ (PSNR), so a fast variant that draws something else shows.
Start-up is the time from nothing to an engine ready to draw (its warm-up included).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import torch

from bench.records import append_json, default_json, machine
from bench.timing import time_calls
from live.cli.table import print_table
from live.config import EngineConfig
from live.engines import BackendUnavailable, make_engine
from live.engines.devices import cpu_has_bf16, resolve_device
from live.engines.factory import BACKENDS, installed, resolve_engine_config
from live.pipeline.latency import LatencyStats
from models import STANDARD_ARCHS, load_generator, random_generator
from models.errors import first_line
from models.image_metrics import psnr as image_psnr

ROUND_CALLS = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", default="vox256",
                   help=f"checkpoint path or a standard config with random weights ({', '.join(STANDARD_ARCHS)}); "
                        "latency does not depend on weight values")
    p.add_argument("--backend", default="installed",
                   help="variants to compare, comma-separated: BACKEND or BACKEND:PRECISION (e.g. "
                        "compiled:bf16,openvino:bf16); installed: every installed backend at the precisions that "
                        f"make sense on the device (backends: {', '.join(BACKENDS)})")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="precision of variants that name none")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=100, help="timed runs per variant (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per variant first (default 10)")
    p.add_argument("--threads", type=int, default=0, help="openvino/onnxruntime CPU threads (0: every core)")
    p.add_argument("--no-compile", action="store_true", help="compiled backend without torch.compile")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode for the compiled backend")
    p.add_argument("--no-cuda-graph", action="store_true", help="compiled backend without the CUDA graph")
    p.add_argument("--json", default=default_json(), help="results file (a JSON list, appended to)")


def load(spec: str):
    if spec in STANDARD_ARCHS:
        return random_generator(STANDARD_ARCHS[spec]), f"{spec} (random weights)"
    return load_generator(spec), str(Path(spec).name)


def installed_variants(device_type: str) -> list[tuple[str, str]]:
    """What a user of this machine could pick, each at the precisions that matter on the device."""
    if device_type == "cuda":
        wanted = [("eager", "fp32"), ("eager", "fp16"), ("compiled", "fp16"), ("tensorrt", "fp16"),
                  ("onnxruntime", "fp16")]
    else:
        low = ["bf16"] if cpu_has_bf16() else []
        wanted = ([("eager", "fp32")] + [("eager", p) for p in low] + [("compiled", p) for p in low or ["fp32"]]
                  + [("openvino", "fp32")] + [("openvino", p) for p in low] + [("onnxruntime", "fp32")])
    return [v for v in wanted if installed(v[0])]


def parse_variants(spec: str, precision: str, device_type: str) -> list[tuple[str, str]]:
    if spec == "installed":
        return installed_variants(device_type)
    out = []
    for item in spec.split(","):
        backend, _, prec = item.strip().partition(":")
        out.append((backend, prec or precision))
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """PSNR of images in [-1, 1], to 0.1 dB for the record; None where they are identical (JSON has no inf)."""
    db = image_psnr(a, b, 2.0)
    return None if math.isinf(db) else round(db, 1)


def build(G, args, backend: str, precision: str):
    cfg = resolve_engine_config(EngineConfig(backend=backend, precision=precision, device=args.device,
                                             batch=args.batch, torch_compile=not args.no_compile,
                                             compile_mode=args.compile_mode, threads=args.threads,
                                             cuda_graph=not args.no_cuda_graph, warmup_iters=1))
    t0 = time.perf_counter()
    engine = make_engine(G.to(cfg.device), cfg)    # every engine copies what it needs of G
    return engine, cfg, time.perf_counter() - t0


def run(args: argparse.Namespace) -> list[dict]:
    G, label = load(args.generator)
    device = resolve_device(args.device)
    variants = parse_variants(args.backend, args.precision, device.type)
    gen = torch.Generator().manual_seed(0)
    w_plus = G.truncate(G.broadcast(G.mapping(torch.randn(args.batch, G.style_dim, generator=gen))), 0.7)
    reference = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu",
                                            batch=args.batch)).run(w_plus).clone()
    built, skipped = [], []
    for backend, precision in variants:
        try:
            engine, cfg, ready_s = build(G, args, backend, precision)
        except BackendUnavailable as e:
            skipped.append(f"{backend}:{precision}: {first_line(e, None)}")
            continue
        w = w_plus.to(engine.device, engine.dtype).contiguous()
        built.append({"engine": engine, "cfg": cfg, "ready_s": ready_s, "w": w, "samples": [],
                      "psnr_db": psnr(engine.run(w), reference)})
    if not built:
        raise BackendUnavailable("no backend could be built here: " + "; ".join(skipped))
    for b in built:
        time_calls(lambda b=b: b["engine"].run(b["w"]), 0, args.warmup, b["engine"].device)
    rounds = max(1, math.ceil(args.iters / ROUND_CALLS))
    order = random.Random(0)
    for _ in range(rounds):   # a new order every round: no variant always runs right after the same one
        for b in order.sample(built, len(built)):
            b["samples"] += time_calls(lambda b=b: b["engine"].run(b["w"]), ROUND_CALLS, 0, b["engine"].device)
    fastest = min(LatencyStats.from_ms(b["samples"]).median_ms for b in built)
    baseline = next((b for b in built if b["cfg"].backend == "eager"), built[0])
    base_ms = LatencyStats.from_ms(baseline["samples"]).median_ms
    records = []
    for b in built:
        engine, cfg = b["engine"], b["cfg"]
        stats = LatencyStats.from_ms(b["samples"])
        record = {"bench": "synth", "generator": label, "resolution": G.resolution, "channels": list(G.arch.channels),
                  "backend": cfg.backend, "precision": cfg.precision, "device": str(engine.device),
                  "runtime_device": getattr(engine, "ov_device", None) or getattr(engine, "providers", [None])[0],
                  "cuda_graph": getattr(engine, "cuda_graph", None) is not None, "batch": args.batch,
                  "torch_compile": cfg.backend == "compiled" and cfg.torch_compile, "threads": args.threads,
                  "iters": len(b["samples"]), "warmup": args.warmup, "build_s": round(b["ready_s"], 2),
                  "from_cache": getattr(engine, "cache_hit", None),
                  "timer": "cuda-events" if engine.device.type == "cuda" else "wall-clock",
                  **{k: round(v, 4) for k, v in stats.__dict__.items() if k != "n"},
                  "images_per_s": round(1e3 * args.batch / stats.median_ms, 2),
                  "x_slower_than_fastest": round(stats.median_ms / fastest, 2),
                  "speedup_vs_baseline": round(base_ms / stats.median_ms, 2),
                  "baseline": f"{baseline['cfg'].backend} {baseline['cfg'].precision}",
                  "psnr_vs_eager_fp32_db": b["psnr_db"], "alternating_with": len(built),
                  "skipped": skipped, "machine": machine()}
        append_json(args.json, record)
        records.append(record)
    rows = [{**r, "variant": f"{r['backend']} {r['precision']}",
             "psnr_vs_eager_fp32_db": r["psnr_vs_eager_fp32_db"] or "identical"} for r in records]
    print_table(f"synthesis, {label}, {G.resolution} px, batch {args.batch} "
                f"({records[0]['machine'].get('gpu', records[0]['machine']['cpu'])}; one alternating run)", rows, [
                    ("variant", "backend"), ("device", "device"), ("median_ms", "median ms"), ("p99_ms", "p99 ms"),
                    ("x_slower_than_fastest", "x fastest"), ("speedup_vs_baseline", f"speed-up vs {rows[0]['baseline']}"),
                    ("psnr_vs_eager_fp32_db", "PSNR dB vs eager fp32"), ("build_s", "ready in s")])
    for line in skipped:
        print(f"skipped {line}")
    print(f"appended to {args.json}")
    return records
