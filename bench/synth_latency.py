"""Synthesis latency: W+ in, image on the device out, batch B, one backend and precision."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.records import append_json, machine
from bench.timing import time_calls
from live.cli.table import print_table
from live.config import EngineConfig
from live.engines import make_engine
from live.engines.factory import resolve_engine_config
from live.pipeline.latency import LatencyStats
from models import STANDARD_ARCHS, load_generator, random_generator


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", default="vox256",
                   help=f"checkpoint path or a standard config with random weights ({', '.join(STANDARD_ARCHS)}); "
                        "latency does not depend on weight values")
    p.add_argument("--backend", default="auto", choices=["auto", "eager", "compiled", "tensorrt"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=200, help="timed runs (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed runs first (default 20)")
    p.add_argument("--no-compile", action="store_true", help="compiled backend without torch.compile")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode for the compiled backend")
    p.add_argument("--no-cuda-graph", action="store_true", help="compiled backend without the CUDA graph")
    p.add_argument("--json", default="bench/results.json", help="results file (a JSON list, appended to)")


def load(spec: str):
    if spec in STANDARD_ARCHS:
        return random_generator(STANDARD_ARCHS[spec]), f"{spec} (random weights)"
    return load_generator(spec), str(Path(spec).name)


def run(args: argparse.Namespace) -> dict:
    G, label = load(args.generator)
    cfg = resolve_engine_config(EngineConfig(backend=args.backend, precision=args.precision, device=args.device,
                                             batch=args.batch, torch_compile=not args.no_compile,
                                             compile_mode=args.compile_mode,
                                             cuda_graph=not args.no_cuda_graph))
    t0 = time.perf_counter()
    engine = make_engine(G.to(cfg.device), cfg)
    build_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    w_plus = G.truncate(G.broadcast(G.mapping(torch.randn(args.batch, G.style_dim, generator=gen).to(cfg.device))), 0.7)
    w_plus = w_plus.to(engine.device, engine.dtype).contiguous()
    samples = time_calls(lambda: engine.run(w_plus), args.iters, args.warmup, engine.device)
    stats = LatencyStats.from_ms(samples)
    record = {"bench": "synth", "generator": label, "resolution": G.resolution, "channels": list(G.arch.channels),
              "backend": cfg.backend, "precision": cfg.precision, "device": str(engine.device),
              "cuda_graph": getattr(engine, "cuda_graph", None) is not None, "batch": args.batch,
              "torch_compile": cfg.backend == "compiled" and cfg.torch_compile,
              "iters": args.iters, "warmup": args.warmup, "build_s": round(build_s, 2),
              "timer": "cuda-events" if engine.device.type == "cuda" else "wall-clock",
              **{k: round(v, 4) for k, v in stats.__dict__.items() if k != "n"},
              "images_per_s": round(1e3 * args.batch / stats.median_ms, 2), "machine": machine()}
    path = append_json(args.json, record)
    print_table(f"synthesis latency ({record['machine'].get('gpu', record['machine']['cpu'])})", [record], [
        ("generator", "generator"), ("resolution", "px"), ("backend", "backend"), ("precision", "precision"),
        ("device", "device"), ("batch", "batch"), ("median_ms", "median ms"), ("p99_ms", "p99 ms"),
        ("images_per_s", "images/s"), ("build_s", "build s")])
    print(f"appended to {path}")
    return record
