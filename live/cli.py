"""The `live` command line. Each subcommand is argument parsing plus one call into the packages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loguru import logger

from live import __version__

DESCRIPTION = """\
live: real-time face puppeteering through StyleGAN2 latent directions.

An avatar made from one photo moves with your face in a virtual camera, after
Bounareli et al., "Finding Directions in GAN's Latent Space for Neural Face
Reenactment" (BMVC 2022). Run `live COMMAND --help` for each command.
"""

EPILOG = """\
configuration: defaults < user config file (`live config path`) < --config FILE < flags.
files: config, models and caches live in the platform's user dirs, or under $LIVE_HOME.
"""


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generator and engine (config keys generator.* and engine.*)")
    g.add_argument("--generator", "-g", metavar="PATH", help="generator: a checkpoint (.pt, .safetensors, NVIDIA .pkl) or a cached model name; "
                   "default: random weights of --arch, which draw no face")
    g.add_argument("--arch", help="architecture of random weights: vox256, 256-cm2, 1024-cm2, fixture128")
    g.add_argument("--truncation", type=float, metavar="PSI", help="truncation psi (1 = none)")
    g.add_argument("--backend", choices=["auto", "eager", "compiled", "tensorrt"], help="synthesis backend")
    g.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], help="synthesis precision")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="live", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"live {__version__}")
    parser.add_argument("--config", "-c", metavar="FILE", help="YAML config file (see `live config show`)")
    parser.add_argument("--log-level", metavar="LEVEL", help="TRACE, DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="drive an avatar with your face, live: camera -> avatar -> virtual camera",
                       description="The real-time loop: capture -> face tracking -> parameters -> One-Euro "
                                   "smoothing -> delta_p -> delta_w = A delta_p -> StyleGAN2 synthesis -> sinks "
                                   "(virtual camera, preview window, file, null). Relative mode (default) copies your "
                                   "motion onto the avatar's own resting pose; --absolute gives it your pose. Every "
                                   "option has a config key (run.*, engine.*, generator.*; `live config show`). "
                                   "Without --avatar it drives a random face of the generator with demo directions, "
                                   "and without a camera a synthetic motion: the whole loop runs, and says so.")
    _add_engine_flags(p)
    p.add_argument("--avatar", "-a", metavar="ME.pt", help="avatar file from `live avatar create` (run.avatar)")
    p.add_argument("--directions", "-d", metavar="A.pt", help="direction matrix (run.directions)")
    p.add_argument("--source", "-s", metavar="SRC", help="0 | /dev/videoN | clip.mp4 | photo.jpg | synthetic "
                   "(run.source, default auto: camera 0 if present, else synthetic)")
    p.add_argument("--sink", action="append", metavar="SPEC",
                   help="vcam, window, file:out.mp4, file+driver:out.mp4, null; repeat or comma-separate "
                        "(run.sinks, default window)")
    p.add_argument("--profile", metavar="NAME", help="calibration profile for the neutral pose (run.profile)")
    p.add_argument("--drive", metavar="NAMES", help="parameters that drive the avatar, comma-separated "
                   "(run.driven, default all), e.g. pitch,jaw,blink_left,blink_right")
    p.add_argument("--absolute", action="store_true", default=None,
                   help="take the driver's absolute pose, the paper's cross-reenactment (run.absolute)")
    p.add_argument("--fast", action="store_true", default=None,
                   help="video files: as fast as possible, nothing dropped (run.fast)")
    p.add_argument("--loop", action="store_true", default=None, help="video files: loop (run.loop)")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N output frames (run.frames; default: "
                   "until Ctrl-C or the clip ends)")
    p.add_argument("--fps", type=float, help="output frame rate of files and the virtual camera (run.fps, 25)")
    p.add_argument("--size", metavar="WxH", help="virtual camera / window size (run.output_size, 512x512)")
    p.add_argument("--audio-delay", metavar="auto|MS|off", help="delayed microphone passthrough (run.audio_delay)")
    p.add_argument("--stats", metavar="JSON", help="also write the run's statistics to this JSON file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate", help="draw images from random seeds",
                       description="Synthesise one image per seed and save them as a grid (PNG).")
    _add_engine_flags(p)
    p.add_argument("--seeds", default="0-7", help="seeds: 0-7 or 1,5,9 (default 0-7)")
    p.add_argument("--noise", choices=["const", "random", "none"], default="const", help="noise mode")
    p.add_argument("--out", "-o", required=True, metavar="PNG", help="output image")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("config", help="show, create or locate the configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("show", help="print the effective config as documented YAML")
    c.set_defaults(func=cmd_config_show)
    c = csub.add_parser("init", help="write the documented defaults to the user config file")
    c.add_argument("--force", action="store_true", help="overwrite an existing file")
    c.set_defaults(func=cmd_config_init)
    c = csub.add_parser("path", help="print where the user config file is")
    c.set_defaults(func=cmd_config_path)

    p = sub.add_parser("models", help="get, check, inspect and convert weights (generators, encoders, directions)",
                       description="Known weights are listed in a registry (models/registry.yaml, plus "
                                   "registry.yaml in the config folder); fetched and imported files live in the "
                                   "user cache (models/ under it). A model NAME can be given wherever a path is "
                                   "asked for, e.g. `live run -g vox256`.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    m = msub.add_parser("list", help="the registry and what is in the local cache")
    m.set_defaults(func=cmd_models_list)
    m = msub.add_parser("fetch", help="download a registered model (resumable, verified before it is kept)",
                        description="Download NAME from the registry's URLs (Google Drive included) into the cache. "
                                    "An interrupted download resumes; the file is kept only after its size, sha256 "
                                    "(where known) and a load with live's own loaders check out. NVIDIA pickles are "
                                    "converted to safetensors.")
    m.add_argument("names", metavar="NAME", nargs="+")
    m.add_argument("--force", action="store_true", help="download again even if the cache has it")
    m.set_defaults(func=cmd_models_fetch)
    m = msub.add_parser("import", help="register a local file after checking it loads",
                        description="Check PATH with live's loaders and record it in the cache index under NAME "
                                    "(the file stays where it is; NVIDIA pickles are converted into the cache).")
    m.add_argument("path", metavar="PATH")
    m.add_argument("--name", "-n", help="name to use (default: the file name without extension)")
    m.add_argument("--kind", choices=["generator", "encoder", "directions"], help="default: from the registry or the file")
    m.set_defaults(func=cmd_models_import)
    m = msub.add_parser("verify", help="re-check cached models (sha256 and loading); broken ones are taken out")
    m.add_argument("names", metavar="NAME", nargs="*", help="default: every cached model")
    m.set_defaults(func=cmd_models_verify)
    m = msub.add_parser("path", help="print the file of a cached model")
    m.add_argument("name", metavar="NAME")
    m.set_defaults(func=cmd_models_path)
    m = msub.add_parser("convert", help="convert a checkpoint to safetensors (no pickle needed to load it)",
                        description="Load IN with the safe loader, check it, and write OUT as safetensors.")
    m.add_argument("src", metavar="IN", help="reference-trainer checkpoint (.pt) or NVIDIA StyleGAN2-ADA .pkl")
    m.add_argument("dst", metavar="OUT", help="output .safetensors file")
    m.set_defaults(func=cmd_models_convert)
    m = msub.add_parser("info", help="describe a generator file: architecture, size, weights hash")
    m.add_argument("path", metavar="PATH")
    m.set_defaults(func=cmd_models_info)
    p = sub.add_parser("track", help="track a face: per-frame parameters as CSV and an overlay video",
                       description="Track the face in SOURCE (camera index, video or image) and write the 15 "
                                   "parameters per frame (yaw, pitch, roll, jaw and 11 expression coefficients) "
                                   "to CSV, and/or a video with the mesh, head-pose axes and expression bars.")
    p.add_argument("source", metavar="SOURCE", help="0 (camera), clip.mp4 or photo.jpg")
    p.add_argument("--out", metavar="CSV", help="per-frame parameters")
    p.add_argument("--overlay", metavar="MP4", help="video with the tracking drawn on it")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--raw", action="store_true", help="no temporal smoothing")
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("calibrate", help="record your neutral face as a calibration profile",
                       description="Look for a still, neutral face (mouth closed, eyes open, head still) for "
                                   "--seconds, and store its parameters and landmark template as a named profile. "
                                   "`live run` drives the avatar relative to it.")
    p.add_argument("--source", default="0", help="camera index, clip.mp4 or photo.jpg (default: camera 0)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of the still stretch (default 2)")
    p.add_argument("--timeout", type=float, default=20.0, help="give up after this many seconds of video")
    p.add_argument("--name", default="default", help="profile name (default: default)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("directions", help="fit the direction matrix A for a generator")
    dsub = p.add_subparsers(dest="directions_command", metavar="ACTION", required=True)
    d = dsub.add_parser("fit", help="sample, track and fit A (delta_p -> delta_w) for a generator",
                        description="Sample codes, synthesise and track every image, keep those with a face, "
                                    "measure the parameter ranges and fit A in closed form; optionally refine it "
                                    "by re-synthesis calibration. Samples are cached and resumed.")
    d.add_argument("--generator", "-g", required=True, metavar="PATH")
    d.add_argument("--out", "-o", required=True, metavar="A.pt")
    d.add_argument("--samples", type=int, default=2000, help="codes to sample (default 2000)")
    d.add_argument("--truncation", type=float, default=0.7, help="truncation psi of the samples (default 0.7)")
    d.add_argument("--layers", type=int, default=8, help="W+ layers shifted (default 8, as in the paper)")
    d.add_argument("--method", choices=["p_on_w", "w_on_p"], default="p_on_w", help="closed form (see docs)")
    d.add_argument("--calibration-rounds", type=int, default=0, help="re-synthesis calibration rounds (default 0)")
    d.add_argument("--calibration-seeds", type=int, default=24, help="seeds per calibration round")
    d.add_argument("--calibration-mode", choices=["diagonal", "full"], default="diagonal",
                   help="rescale each direction by its response (default), or invert the whole response matrix")
    d.set_defaults(func=cmd_directions_fit)

    p = sub.add_parser("edit", help="edit a face along the directions: set or sweep parameters",
                       description="Single-attribute editing as in the paper: synthesise a face (a seed), track its "
                                   "parameters, and move chosen ones to new values through the direction matrix. "
                                   "Values are raw: degrees for yaw/pitch/roll, standard deviations for expressions.")
    p.add_argument("--generator", "-g", required=True, metavar="PATH")
    p.add_argument("--directions", "-d", required=True, metavar="A.pt")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--seed", type=int, default=0, help="source face: a random seed (default 0)")
    src.add_argument("--avatar", metavar="ME.pt", help="source face: an avatar made by `live avatar create`")
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE", help="e.g. --set yaw=20 jaw=3")
    p.add_argument("--sweep", metavar="NAME=LO:HI", help="e.g. --sweep pitch=-10:10 (video or image strip)")
    p.add_argument("--steps", type=int, default=30, help="sweep steps (default 30)")
    p.add_argument("--out", "-o", required=True, help="out.png (source | edit) or, with --sweep, out.mp4 / strip.png")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("avatar", help="make an avatar from one photo, and look inside one")
    asub = p.add_subparsers(dest="avatar_command", metavar="ACTION", required=True)
    a = asub.add_parser("create", help="one photo -> me.pt (find, crop, invert, tune, track)",
                        description="Find the face in PHOTO (the largest, or --face N), crop it with the generator's "
                                    "framing, invert it into W+ (from the mean code, or from an e4e encoder's code "
                                    "with --encoder), fine-tune the generator around that code (pivotal tuning, on by "
                                    "default), track the reconstruction's face parameters, and write the avatar file "
                                    "that `live run --avatar` drives.")
    a.add_argument("photo", metavar="PHOTO")
    a.add_argument("--generator", "-g", required=True, metavar="G", help="generator (path or cached model name)")
    a.add_argument("--directions", "-d", metavar="A.pt", help="the direction matrix the avatar will be driven with "
                   "(its hash is recorded so a mismatch is caught)")
    a.add_argument("--out", "-o", required=True, metavar="ME.pt")
    a.add_argument("--pti", action=argparse.BooleanOptionalAction, default=True,
                   help="pivotal tuning (default on; --no-pti keeps the generator untouched)")
    a.add_argument("--steps", type=int, default=400, help="inversion steps (default 400)")
    a.add_argument("--tune-steps", type=int, default=300, help="pivotal tuning steps (default 300)")
    a.add_argument("--framing", choices=["fixture", "voxceleb", "ffhq"],
                   help="how the generator's training faces were cropped (default: the registry's, else voxceleb)")
    a.add_argument("--face", type=int, default=0, metavar="N", help="which face, 0 = the largest (default)")
    a.add_argument("--encoder", "-e", metavar="E4E", help="e4e encoder (path or cached name) as the starting point")
    a.add_argument("--device", default="auto", help="auto, cpu, cuda")
    a.set_defaults(func=cmd_avatar_create)
    a = asub.add_parser("show", help="what is in an avatar file; the reconstruction beside the photo")
    a.add_argument("avatar", metavar="ME.pt")
    a.add_argument("--out", "-o", metavar="PNG", help="write photo crop | reconstruction side by side")
    a.set_defaults(func=cmd_avatar_show)

    p = sub.add_parser("gan", help="fine-tune StyleGAN2 on talking-head video: make the dataset, train")
    gsub = p.add_subparsers(dest="gan_command", metavar="ACTION", required=True)
    g = gsub.add_parser("dataset", help="videos -> face crops with a generator's framing (PNG + dataset.json)",
                        description="Track every frame, crop it with the generator's framing, smooth the crop over "
                                    "time so head motion stays in the picture, skip frames without a face and "
                                    "near-identical frames.")
    g.add_argument("videos", nargs="+", metavar="VIDEO")
    g.add_argument("--out", "-o", required=True, metavar="DIR")
    g.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    g.add_argument("--framing", choices=["voxceleb", "ffhq", "fixture"], default="voxceleb")
    g.add_argument("--smooth", type=float, default=0.5, metavar="S", help="crop smoothing, seconds (default 0.5)")
    g.add_argument("--dedupe", type=float, default=3.0, help="skip frames closer than this (grey levels, 95th "
                   "percentile of the difference) to the last kept one; 0 keeps all (default 3)")
    g.add_argument("--every", type=int, default=1, metavar="N", help="use every Nth frame (default 1)")
    g.set_defaults(func=cmd_gan_dataset)
    from live.gan.config import TrainConfig as T  # its defaults, shown by --help
    g = gsub.add_parser("train", help="train or fine-tune a StyleGAN2 on a folder of face crops",
                        description="StyleGAN2's objective (non-saturating loss, lazy R1, path-length regularisation, "
                                    "EMA generator) with differentiable augmentation for small datasets. Checkpoints "
                                    "in the reference format; running the same command again on the same --out "
                                    "continues from its last.pt. Several GPUs: torchrun --nproc_per_node N -m live "
                                    "gan train ...",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g.add_argument("--data", required=True, metavar="DIR", help="a folder made by `live gan dataset`")
    g.add_argument("--out", "-o", required=True, metavar="DIR", help="checkpoints, sample grids, log.jsonl")
    g.add_argument("--resume", metavar="G", help="generator to fine-tune (model name, .pt, .pkl, .safetensors) or a "
                   "full training checkpoint; leave out to train from scratch")
    g.add_argument("--kimg", type=float, default=T.kimg, help="total thousands of real images to show")
    g.add_argument("--batch", type=int, default=T.batch, help="images per step, over all GPUs")
    g.add_argument("--lr", type=float, default=T.lr, help="Adam learning rate (G and D)")
    g.add_argument("--r1-gamma", type=float, default=T.r1_gamma, help="R1 weight")
    g.add_argument("--pl-weight", type=float, default=T.pl_weight, help="path-length regularisation weight (0: off)")
    g.add_argument("--style-mixing", type=float, default=T.style_mixing, help="probability of mixing two codes")
    g.add_argument("--ema-kimg", type=float, default=T.ema_kimg, help="half-life of the EMA generator, kimg")
    g.add_argument("--d-warmup-kimg", type=float, default=T.d_warmup_kimg, help="fine-tuning a generator that "
                   "comes without its discriminator: train the new D alone this long before G moves")
    g.add_argument("--augment", default=T.augment, help="DiffAugment policy, or none")
    g.add_argument("--amp", choices=["auto", "on", "off"], default=T.amp, help="bf16 autocast (auto: on CUDA)")
    g.add_argument("--snapshot-kimg", type=float, default=T.snapshot_kimg, help="checkpoint and sample grid interval")
    g.add_argument("--resolution", type=int, help="from scratch: training size; None = the images' size")
    g.add_argument("--channel-multiplier", type=int, default=T.channel_multiplier, help="from scratch: network width")
    g.add_argument("--channel-max", type=int, default=T.channel_max, help="from scratch: widest layer")
    g.add_argument("--style-dim", type=int, default=T.style_dim, help="from scratch: W dimension")
    g.add_argument("--n-mlp", type=int, default=T.n_mlp, help="from scratch: mapping layers")
    g.add_argument("--seed", type=int, default=T.seed, help="random seed (also picks the sample grid's codes)")
    g.add_argument("--workers", type=int, default=T.workers, help="data loader processes")
    g.add_argument("--device", default=T.device, help="auto, cpu, cuda, cuda:N")
    g.set_defaults(func=cmd_gan_train)

    p = sub.add_parser("face-model", help="build the 3D face shape model from footage")
    fsub = p.add_subparsers(dest="face_model_command", metavar="ACTION", required=True)
    f = fsub.add_parser("build", help="track clips and build the shape model (reproducible)",
                        description="Track every frame of the clips, align them, and build the mean shape, "
                                    "identity and expression bases, rigidity weights and parameter ranges. "
                                    "The project ships the result as models/data/face_model.npz.")
    f.add_argument("--media", default="../shared/media", help="folder with the clips (default ../shared/media)")
    f.add_argument("--clips", nargs="+", metavar="CLIP", help="clip file names (default: the five test clips)")
    f.add_argument("--out", "-o", default="models/data/face_model.npz", help="output .npz")
    f.set_defaults(func=cmd_face_model_build)

    _describe_all(parser)
    return parser


def _describe_all(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its one-line help, so `--help` always explains it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description:
                    sub.description = (helps.get(name) or "").capitalize() + "."
                _describe_all(sub)


def load_cli_config(args):
    from live.config import load_config
    from live.paths import user_config_file
    user = user_config_file()
    overrides = {"log.level": getattr(args, "log_level", None)}
    for flag, key in (("generator", "generator.path"), ("arch", "generator.arch"),
                      ("truncation", "generator.truncation"), ("backend", "engine.backend"),
                      ("precision", "engine.precision"), ("device", "engine.device"),
                      ("frames", "run.frames"), ("fps", "run.fps"), ("avatar", "run.avatar"),
                      ("source", "run.source"), ("profile", "run.profile"), ("absolute", "run.absolute"),
                      ("fast", "run.fast"), ("loop", "run.loop"), ("audio_delay", "run.audio_delay")):
        overrides[key] = getattr(args, flag, None)
    if getattr(args, "command", None) == "run" and getattr(args, "directions", None):
        overrides["run.directions"] = args.directions
    if getattr(args, "drive", None):
        overrides["run.driven"] = args.drive
    if getattr(args, "command", None) == "run" and getattr(args, "size", None):
        w, _, h = args.size.lower().partition("x")
        overrides["run.output_size"] = [w, h]
    if getattr(args, "sink", None):
        overrides["run.sinks"] = [s for spec in args.sink for s in spec.split(",") if s]
    return load_config(user if user.is_file() else None, args.config, overrides=overrides)


def cmd_run(args, cfg) -> int:
    import json

    from live.run import run
    report = run(cfg, record_frames=bool(args.stats))
    if args.stats:
        Path(args.stats).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stats).write_text(json.dumps({**report.as_dict(), "per_frame": report.per_frame}, indent=1))
    return 0


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"bad seeds {text!r}: use a range like 0-7 or a list like 1,5,9") from None
    return seeds


def cmd_generate(args, cfg) -> int:
    import cv2
    import numpy as np
    import torch

    from live.engine.base import resolve_device
    from live.generator import generator_from_config
    from live.postprocess import image_grid, to_uint8_rgb
    seeds = parse_seeds(args.seeds)
    device = resolve_device(cfg.engine.device)
    G = generator_from_config(cfg.generator, device)
    z = torch.stack([torch.from_numpy(np.random.RandomState(s).randn(G.style_dim)).float() for s in seeds]).to(device)
    with torch.no_grad():
        images = G.synthesize(G.mapping(z, cfg.generator.truncation), noise_mode=args.noise)
    grid = image_grid(to_uint8_rgb(images))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), grid[:, :, ::-1]):
        raise OSError(f"could not write {out}: use a .png or .jpg name in a writable folder")
    logger.info("wrote {} images ({} px) to {}", len(seeds), G.resolution, out)
    return 0


def cmd_config_show(args, cfg) -> int:
    from live.config import to_yaml
    sys.stdout.write(to_yaml(cfg))
    return 0


def cmd_config_init(args, cfg) -> int:
    from live.config import LiveConfig, to_yaml
    from live.paths import user_config_file
    path = user_config_file()
    if path.exists() and not args.force:
        logger.error("{} exists already; use --force to overwrite it", path)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(LiveConfig()))
    print(path)
    return 0


def cmd_config_path(args, cfg) -> int:
    from live.paths import user_config_file
    print(user_config_file())
    return 0


def cmd_models_list(args, cfg) -> int:
    from bench.report import print_table
    from live.model_store import ModelStore
    store = ModelStore()
    rows = [{**r, "size": f"{r['size'] / 1e6:.0f} MB" if r["size"] else ""} for r in store.listing()]
    print_table(f"models (cache: {store.root})", rows,
                [("name", "name"), ("kind", "kind"), ("status", "status"), ("size", "size"), ("description", "what")])
    return 0


def cmd_models_fetch(args, cfg) -> int:
    from live.model_store import ModelStore
    store = ModelStore()
    for name in args.names:
        m = store.fetch(name, force=args.force)
        print(f"{name}: {m.path}")
    return 0


def cmd_models_import(args, cfg) -> int:
    from live.model_store import ModelStore
    m = ModelStore().import_file(Path(args.path), args.name, args.kind)
    print(f"{m.name}: {m.summary}")
    print(f"  {m.path}  (sha256 {m.sha256[:16]}...)")
    return 0


def cmd_models_verify(args, cfg) -> int:
    from live.model_store import ModelStore
    results = ModelStore().verify(args.names or None)
    if not results:
        print("no models in the cache; `live models list` shows what can be fetched")
    for name, ok, message in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {message}")
    return 0 if all(ok for _, ok, _ in results) else 1


def cmd_models_path(args, cfg) -> int:
    from live.model_store import ModelStore
    print(ModelStore().path(args.name))
    return 0


def cmd_models_convert(args, cfg) -> int:
    from models import load_generator, save_safetensors
    from models.checkpoint import weights_hash
    G = load_generator(args.src)
    dst = save_safetensors(G, args.dst)
    logger.info("wrote {} ({} px, weights sha256 {})", dst, G.resolution, weights_hash(G)[:16])
    return 0


def cmd_models_info(args, cfg) -> int:
    from models import load_generator
    from models.checkpoint import weights_hash
    G = load_generator(args.path)
    n_params = sum(p.numel() for p in G.parameters())
    print(f"file:        {args.path}")
    print(f"resolution:  {G.resolution} px")
    print(f"channels:    {list(G.arch.channels)} (4 px .. {G.resolution} px)")
    print(f"style dim:   {G.style_dim}, mapping layers: {G.arch.n_mlp}, W+ codes: {G.n_latent}")
    print(f"parameters:  {n_params / 1e6:.2f} M")
    print(f"weights:     sha256 {weights_hash(G)}")
    return 0


def cmd_track(args, cfg) -> int:
    from live.track import track
    if not args.out and not args.overlay:
        logger.warning("neither --out nor --overlay given: tracking only, results are not saved")
    track(cfg, args.source, args.out, args.overlay, args.frames, smooth=not args.raw)
    return 0


def cmd_calibrate(args, cfg) -> int:
    from calibration.run import calibrate
    profile, path = calibrate(cfg, args.source, args.seconds, args.timeout, args.name)
    print(f"profile {profile.name!r} written to {path}")
    print(f"  from {profile.frames} still frames of {profile.source}")
    for name, value in profile.neutral_named().items():
        print(f"  {name:<12} {value:+8.3f}")
    return 0


def cmd_directions_fit(args, cfg) -> int:
    import time

    from live.directions.fit import calibrate_directions, closed_form_fit
    from live.directions.sampling import collect_samples, sample_cache_path
    from live.paths import cache_dir
    from models import load_generator
    from models.checkpoint import weights_hash
    from models.directions import file_sha256
    from models.face_model import default_model_path
    start = time.perf_counter()
    G = load_generator(args.generator)
    if args.layers > G.n_latent:
        raise ValueError(f"--layers {args.layers}: this generator has only {G.n_latent} W+ codes")
    g_hash = weights_hash(G)
    cache = sample_cache_path(cache_dir() / "directions", g_hash, args.truncation, default_model_path())
    samples = collect_samples(G, args.samples, args.truncation, cache)
    directions, info = closed_form_fit(samples, layers=args.layers, method=args.method)
    if args.calibration_rounds:
        seeds = range(10**6, 10**6 + args.calibration_seeds)  # disjoint from the fitting seeds
        info["calibration"] = calibrate_directions(G, directions, seeds, args.truncation, args.calibration_rounds,
                                                   mode=args.calibration_mode)
        info["calibration_mode"] = args.calibration_mode
    directions.generator_sha256 = g_hash
    directions.face_model_sha256 = file_sha256(default_model_path())
    info["truncation"] = args.truncation
    info["seconds"] = round(time.perf_counter() - start, 1)
    directions.fit_info = info
    directions.save(args.out)
    logger.info("wrote {} ({} layers, {} s)", args.out, args.layers, info["seconds"])
    return 0


def _framing_for(generator_arg: str, store) -> str:
    entry = store.registry.get(generator_arg)
    if entry is not None and entry.framing:
        return entry.framing
    logger.info("framing not given and not known for {}: using voxceleb (the paper's); --framing sets it",
                generator_arg)
    return "voxceleb"


def cmd_avatar_create(args, cfg) -> int:
    import torch

    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig
    from live.avatar.pti import TuningConfig
    from live.model_store import ModelStore
    from models import load_generator
    from models.checkpoint import weights_hash
    from models.directions import Directions, file_sha256
    store = ModelStore()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    g_path = store.resolve(args.generator)
    G = load_generator(g_path, device)
    d_hash = ""
    if args.directions:
        d_path = store.resolve(args.directions)
        Directions.load(d_path, require_ours=False).check_generator(weights_hash(G))
        d_hash = file_sha256(d_path)
    opts = AvatarOptions(framing=args.framing or _framing_for(args.generator, store), face_index=args.face,
                         pti=args.pti, inversion=InversionConfig(steps=args.steps),
                         tuning=TuningConfig(steps=args.tune_steps),
                         encoder=store.resolve(args.encoder) if args.encoder else None)
    avatar, report = create_avatar(args.photo, G, opts, generator_hint=str(args.generator), directions_sha256=d_hash)
    path = avatar.save(args.out)
    print(f"avatar written to {path}")
    print(f"  framing {opts.framing}, PSNR over the crop: inversion {report.psnr_inversion:.2f} dB"
          + (f", tuned {report.psnr_tuned:.2f} dB" if args.pti else ""))
    print("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
          + f" (total {sum(report.seconds.values()):.1f} s on {device})")
    return 0


def cmd_avatar_show(args, cfg) -> int:
    import cv2
    import numpy as np

    from live.avatar import Avatar
    from models.face_landmarks import PARAM_NAMES
    a = Avatar.read(args.avatar)
    size_mb = sum(v.numel() * 2 for v in a.tuned.values()) / 1e6
    print(f"avatar:       {args.avatar} (created {a.created} from {a.source_photo})")
    print(f"generator:    sha256 {a.generator_sha256[:16]}... ({a.generator_hint or 'no hint'})")
    print(f"directions:   {('sha256 ' + a.directions_sha256[:16] + '...') if a.directions_sha256 else 'not recorded'}")
    print(f"code:         W+ {list(a.w_s.shape)}, framing {a.framing}, crop {a.crop.shape[1]} px of a "
          f"{a.photo_size[0]}x{a.photo_size[1]} photo")
    print("tuning:       " + (f"{len(a.tuned)} tensors, {size_mb:.1f} MB fp16" if a.tuned else "none"))
    print(f"PSNR (crop):  inversion {a.psnr_inversion:.2f} dB" +
          (f", tuned {a.psnr_tuned:.2f} dB" if a.tuned else ""))
    print("p_s:          " + ", ".join(f"{n} {v:+.2f}" for n, v in zip(PARAM_NAMES, a.p_s.tolist())))
    if args.out:
        side = np.concatenate([a.crop, cv2.resize(a.reconstruction, a.crop.shape[1::-1])], axis=1)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.out), side[:, :, ::-1]):
            raise OSError(f"could not write {args.out}")
        print(f"photo crop | reconstruction written to {args.out}")
    return 0


def cmd_gan_dataset(args, cfg) -> int:
    from live.gan.dataset import DatasetOptions, build_dataset
    r = build_dataset(args.videos, args.out, DatasetOptions(size=args.size, framing=args.framing,
                                                             smooth_s=args.smooth, dedupe=args.dedupe, every=args.every))
    print(f"{r.written} images in {args.out} from {r.clips} clip(s): {r.frames} frames, a face in {r.with_face}, "
          f"{r.duplicates} near-duplicates skipped")
    return 0


def cmd_gan_train(args, cfg) -> int:
    from live.gan.train import Trainer, config_from_args
    from live.model_store import ModelStore
    if args.resume:
        args.resume = str(ModelStore().resolve(args.resume))
    trainer = Trainer(config_from_args(args))
    try:
        report = trainer.run()
    finally:
        trainer.close()
    faces = f"; a face in {report.faces_in_grid[0]} of {report.faces_in_grid[1]} samples" if report.faces_in_grid else ""
    print(f"{report.kimg:.2f} kimg in {report.steps} steps, {report.images_per_second:.1f} img/s; "
          f"checkpoint {report.last_checkpoint}{faces}")
    return 0


def cmd_edit(args, cfg) -> int:
    import cv2
    import numpy as np
    import torch

    from live.directions.edit import Editor, parse_assignments, parse_sweep, source_code
    from live.postprocess import image_grid, to_uint8_rgb
    from live.sinks import FileSink
    from models import load_generator
    from models.checkpoint import weights_hash
    from models.directions import Directions
    if not args.set and not args.sweep:
        raise ValueError("nothing to edit: give --set NAME=VALUE ... or --sweep NAME=LO:HI")
    from live.model_store import ModelStore
    store = ModelStore()
    G = load_generator(store.resolve(args.generator))
    d = Directions.load(store.resolve(args.directions))
    d.check_generator(weights_hash(G))
    if args.avatar:
        from live.avatar import Avatar
        avatar = Avatar.load(args.avatar, G)
        editor = Editor(avatar.generator, d, avatar.w_s[None])
    else:
        editor = Editor(G, d, source_code(G, args.seed, args.truncation))
    fixed = parse_assignments(args.set)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        name, values = parse_sweep(args.sweep, args.steps)
        frames = to_uint8_rgb(editor.render([{**fixed, name: float(v)} for v in values]))
        if out.suffix.lower() == ".mp4":
            sink = FileSink(out, fps=15)
            for f in np.concatenate([frames, frames[::-1]]):
                sink.write(f)
            sink.close()
        elif not cv2.imwrite(str(out), image_grid(frames, cols=len(frames))[:, :, ::-1]):
            raise OSError(f"could not write {out}")
        logger.info("swept {} over {:g}..{:g} in {} steps -> {}", name, values[0], values[-1], len(values), out)
        return 0
    pair = to_uint8_rgb(torch.cat([editor.source_image, editor.render([fixed])]))
    if not cv2.imwrite(str(out), image_grid(pair, cols=2)[:, :, ::-1]):
        raise OSError(f"could not write {out}: use a .png or .jpg name")
    logger.info("source | edited ({}) -> {}", ", ".join(f"{k}={v:g}" for k, v in fixed.items()), out)
    return 0


def cmd_face_model_build(args, cfg) -> int:
    from models.face_model_build import DEFAULT_CLIPS, build_from_footage
    build_from_footage(args.media, tuple(args.clips or DEFAULT_CLIPS), args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    from live.config import ConfigError
    from live.engine.base import BackendUnavailable
    from live.log import setup_logging
    from live.sinks import SinkError
    from live.video import SourceError
    from calibration import CalibrationError, ProfileError
    from models.directions import DirectionsError
    from models.checkpoint import CheckpointError
    from models.download import DownloadError
    from models.registry import RegistryError
    from live.model_store import ModelStoreError
    from live.avatar import AvatarError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    setup_logging(args.log_level or "INFO")
    try:
        cfg = load_cli_config(args)
        setup_logging(cfg.log.level, cfg.log.file)
        return args.func(args, cfg)
    except (CheckpointError, ConfigError, BackendUnavailable, SinkError, SourceError,
            CalibrationError, ProfileError, DirectionsError, DownloadError, RegistryError, ModelStoreError, AvatarError,
            ValueError, OSError) as e:
        logger.error("{}", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
