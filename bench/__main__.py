"""python -m bench BENCHMARK [options]: per-stage and end-to-end latency, median and p99."""

from __future__ import annotations

import argparse
import sys

from bench import (
    avatar_quality,
    directions_quality,
    faults,
    fp16_headroom,
    gpu_carry,
    gpu_check,
    identity_agreement,
    int8_check,
    pipeline_latency,
    quality,
    serve_streams,
    synth_latency,
    track_latency,
    warp_sheet,
    warp_sweeps,
)

BENCHMARKS = (
    ("synth", synth_latency, "StyleGAN2 synthesis latency: every installed backend in one alternating run"),
    ("int8", int8_check, "OpenVINO INT8 against bf16: faster enough, exact enough? (needs nncf)"),
    ("track", track_latency, "tracking + face parameter latency per frame on the clips, and smoothing quality"),
    ("directions", directions_quality, "editing and reenactment quality of a direction matrix"),
    ("avatar", avatar_quality, "avatar creation: reconstruction PSNR, latent space kept, time"),
    ("fp16", fp16_headroom, "how close synthesis comes to fp16's range, op by op (CPU, any generator)"),
    ("gpu", gpu_check, "everything that needs a GPU, in one run: CUDA-only tests and GPU figures -> report"),
    ("gpu-carry", gpu_carry, "the inputs `gpu` needs on a GPU machine without the tracker: wheels, fixtures, "
                             "recordings (< 40 MiB)"),
    ("quality", quality, "reenactment quality as the paper measures it: CSIM, PSNR, SSIM, NME, pose, expression"),
    ("identity", identity_agreement, "dlib's face descriptor by our torch network against dlib itself, on real faces"),
    ("warp", warp_sweeps, "does the mesh warp draw what it is asked? parameter sweeps, tracked afterwards"),
    ("warp-sheet", warp_sheet, "a contact sheet: the warp avatars at real clips' widest mouth, smile, blink, glance, turn"),
    ("faults", faults, "faults injected mid-run (camera, disk, sinks, SIGKILL while writing): recovered? lost?"),
    ("serve", serve_streams, "live serve with 1, 2, 4 browser connections: fps, latency, glass to glass per stream"),
    ("pipeline", pipeline_latency, "the whole live loop: per-stage and added latency, fps, drops, plot"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for name, module, help_text in BENCHMARKS:
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    args = parser.parse_args(argv)
    from live.log import quiet_native_logs, setup_logging
    setup_logging("WARNING")
    if argv is None:      # run as a command (not from tests): native libraries' chatter off stderr
        quiet_native_logs()
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
