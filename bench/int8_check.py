"""Is INT8 worth shipping for OpenVINO? bf16 against two INT8 forms, in one alternating run.

  bf16 (f32)   the openvino backend as it ships: bf16 on CPUs with bf16 instructions, f32 on others
  int8-weights weights stored as INT8 (nncf.compress_weights), computed in that baseline precision
  int8         post-training quantisation of weights and activations (nncf.quantize, calibrated
               on W+ codes of the generator's own distribution), the rest in the baseline precision

Kept only if INT8 is at least 1.3x faster than that baseline with PSNR >= 35 dB against eager fp32 on
held-out codes (#20). Needs `pip install nncf` (not a dependency of live: this is a measurement).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.records import append_json, default_json, machine
from bench.synth_latency import load, psnr
from live.cli.table import print_table
from live.config import EngineConfig
from live.engines import BackendUnavailable, make_engine
from live.engines.openvino_backend import convert_synthesis, import_openvino
from live.pipeline.latency import LatencyStats

SPEEDUP_NEEDED, PSNR_NEEDED = 1.3, 35.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", default="vox256", help="checkpoint or standard architecture (random weights)")
    p.add_argument("--calibration", type=int, default=32, help="W+ codes to calibrate activations on")
    p.add_argument("--held-out", type=int, default=8, help="W+ codes to measure PSNR on")
    p.add_argument("--iters", type=int, default=60, help="timed runs per variant")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default=default_json())


def codes(G, n: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return [G.truncate(G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=gen))), 0.7) for _ in range(n)]


def run(args: argparse.Namespace) -> dict:
    try:
        import nncf
    except ImportError:
        raise BackendUnavailable("bench int8 needs NNCF: pip install nncf") from None
    ov = import_openvino()
    G, label = load(args.generator)
    calibration, held_out = codes(G, args.calibration, 1), codes(G, args.held_out, 2)
    eager = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu"))
    references = [eager.run(w).clone() for w in held_out]
    core = ov.Core()
    # The baseline is what the openvino backend ships on this CPU: bf16 where it has the instructions.
    base = "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
    config = {"INFERENCE_PRECISION_HINT": base, "PERFORMANCE_HINT": "LATENCY"}
    if args.threads:
        config["INFERENCE_NUM_THREADS"] = args.threads
    model = convert_synthesis(G)
    t0 = time.perf_counter()
    variants = {base: model,
                "int8-weights": nncf.compress_weights(convert_synthesis(G), mode=nncf.CompressWeightsMode.INT8_ASYM),
                "int8": nncf.quantize(convert_synthesis(G), nncf.Dataset([w.numpy() for w in calibration]),
                                      subset_size=len(calibration))}
    quantise_s = time.perf_counter() - t0
    compiled = {name: core.compile_model(m, "CPU", config) for name, m in variants.items()}
    requests = {name: c.create_infer_request() for name, c in compiled.items()}
    rows = []
    for name, request in requests.items():
        outs = [torch.from_numpy(np.array(request.infer({0: w.numpy()})[0])) for w in held_out]
        rows.append({"variant": name, "psnr_db": float(np.mean([psnr(o, r) for o, r in zip(outs, references)])),
                     "samples": []})
    x = held_out[0].numpy()
    for _ in range(3):
        for request in requests.values():
            request.infer({0: x})
    for _ in range(max(1, args.iters // 5)):     # alternating rounds of five calls each
        for row, request in zip(rows, requests.values()):
            for _ in range(5):
                t = time.perf_counter()
                request.infer({0: x})
                row["samples"].append((time.perf_counter() - t) * 1e3)
    base_ms = LatencyStats.from_ms(rows[0]["samples"]).median_ms
    for row in rows:
        stats = LatencyStats.from_ms(row.pop("samples"))
        row.update(median_ms=round(stats.median_ms, 2), p99_ms=round(stats.p99_ms, 2),
                   speedup_vs_base=round(base_ms / stats.median_ms, 2), psnr_db=round(row["psnr_db"], 1))
        row["keep"] = (row["variant"] == base or (row["speedup_vs_base"] >= SPEEDUP_NEEDED
                                                    and row["psnr_db"] >= PSNR_NEEDED))
    record = {"bench": "int8", "generator": label, "baseline": base, "resolution": G.resolution, "variants": rows,
              "quantise_s": round(quantise_s, 1), "nncf": nncf.__version__, "openvino": ov.__version__,
              "machine": machine()}
    append_json(args.json, record)
    print_table(f"OpenVINO INT8 vs {base}, {label} (keep INT8 only if >= {SPEEDUP_NEEDED}x faster at >= "
                f"{PSNR_NEEDED:g} dB)", rows, [("variant", "variant"), ("median_ms", "median ms"), ("p99_ms", "p99 ms"),
                                            ("speedup_vs_base", f"speed-up vs {base}"),
                                            ("psnr_db", "PSNR dB vs eager fp32"), ("keep", "keep")])
    return record
