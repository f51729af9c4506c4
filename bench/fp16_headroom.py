"""How close synthesis comes to fp16's range: the largest |value| of every op, computed in fp32.

fp16 holds values up to 65504; a layer whose activations pass that becomes inf in the fp16
engines (the paper's checkpoints, unlike StyleGAN2-ADA's, have no activation clamp). Every aten
op of the static synthesis is watched (a torch dispatch mode), for mapped samples and for codes
pushed far from them (W+ plus `--shift` standard deviations of noise, as heavy driving does);
reported per op kind: the peak and the headroom to 65504. Runs on the CPU, any generator.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.records import append_json, default_json, machine
from live.cli.table import print_table
from live.engines.static_synthesis import StaticSynthesis

FP16_MAX = 65504.0


class PeakValues(TorchDispatchMode):
    """Records the largest |value| each aten op produces."""

    def __init__(self):
        super().__init__()
        self.peak: dict[str, float] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel():
            name = str(func.overloadpacket)
            self.peak[name] = max(self.peak.get(name, 0.0), float(out.detach().abs().max()))
        return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", nargs="+", default=["../shared/fixtures/face128.pt", "vox256", "1024-cm2"],
                   help="checkpoints or standard architectures with random weights")
    p.add_argument("--samples", type=int, default=6, help="codes per generator and condition")
    p.add_argument("--shift", type=float, default=3.0, help="far codes: W+ plus this many sd of noise")
    p.add_argument("--json", default=default_json())


def peaks(G, samples: int, shift: float, seed: int = 0) -> dict[str, dict[str, float]]:
    synthesis = StaticSynthesis(G.synthesis).eval()
    g = torch.Generator().manual_seed(seed)
    out = {}
    for label, scale in (("samples", 0.0), (f"W+ + {shift:g} sd", shift)):
        mode = PeakValues()
        with torch.no_grad(), mode:
            for _ in range(samples):
                w = G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=g)))
                synthesis(w + scale * w.std() * torch.randn(w.shape, generator=g))
        out[label] = mode.peak
    return out


def run(args: argparse.Namespace) -> dict:
    from bench.synth_latency import load
    rows = []
    for spec in args.generator:
        G, label = load(spec)
        for condition, peak in peaks(G, args.samples, args.shift).items():
            op, value = max(peak.items(), key=lambda kv: kv[1])
            rows.append({"generator": label, "codes": condition, "peak_op": op, "peak": round(value, 1),
                         "headroom": round(FP16_MAX / value, 1)})
    record = {"bench": "fp16_headroom", "rows": rows, "machine": machine()}
    append_json(args.json, record)
    print_table("largest |value| of any op in fp32, and fp16's headroom (65504 / peak)", rows,
                [("generator", "generator"), ("codes", "codes"), ("peak_op", "op"), ("peak", "peak"),
                 ("headroom", "headroom x")])
    return record
