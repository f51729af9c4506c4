"""python -m bench BENCHMARK [options]: per-stage and end-to-end latency, median and p99."""

from __future__ import annotations

import argparse
import sys

from bench import avatar, directions, pipeline, synth, track


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    p = sub.add_parser("synth", help="StyleGAN2 synthesis latency for one backend and precision",
                       description="Warm-up, then timed runs (CUDA events on a GPU, wall clock on the CPU).")
    synth.add_arguments(p)
    p.set_defaults(func=synth.run)
    p = sub.add_parser("track", help="tracking + face parameter latency per frame on the clips, and smoothing quality",
                       description=track.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    track.add_arguments(p)
    p.set_defaults(func=track.run)
    p = sub.add_parser("directions", help="editing and reenactment quality of a direction matrix",
                       description=directions.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    directions.add_arguments(p)
    p.set_defaults(func=directions.run)
    p = sub.add_parser("avatar", help="avatar creation: reconstruction PSNR, latent space kept, time",
                       description=avatar.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    avatar.add_arguments(p)
    p.set_defaults(func=avatar.run)
    p = sub.add_parser("pipeline", help="the whole live loop: per-stage and added latency, fps, drops, plot",
                       description=pipeline.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pipeline.add_arguments(p)
    p.set_defaults(func=pipeline.run)
    args = parser.parse_args(argv)
    from live.log import setup_logging
    setup_logging("WARNING")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
