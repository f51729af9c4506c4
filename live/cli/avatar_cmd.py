"""`live avatar create|show`: one photo made into an avatar file, and a look inside one."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.options import option

CREATE_DESCRIPTION = (
    "Make an avatar file from one photo; `live run --avatar ME.pt` drives it. Two renderers. warp (without -g; "
    "seconds on a CPU, no GPU needed): the photo and the tracker's 3D mesh of its face, which the mesh warp moves, "
    "and how far its eyes are seen to look each way. stylegan2 (the paper's method, with -g GENERATOR; minutes on a "
    "CPU): find the face in PHOTO (the largest, or --face N), crop it with the generator's framing, invert it into "
    "W+ (from the mean code, or from an e4e encoder's code with --encoder), fine-tune the generator around that code "
    "(pivotal tuning), both by pixels, by identity (dlib's face descriptor) and by a perceptual term, track the "
    "reconstruction's face parameters, and with -d measure how far each direction may move it before it stops being "
    "this face; the last lines say whether dlib takes the reconstruction for the photo's person (CSIM, distance "
    "< 0.6) and its PSNR. Its options are listed under \"stylegan2 renderer\".")

STYLEGAN2 = "stylegan2 renderer (with -g)"


@dataclass
class CreateCommand:
    photo: str = option(help="the photo", positional=True, metavar="PHOTO")
    out: str = option(help="the avatar file to write", flags=("-o",), metavar="ME.pt")
    renderer: str = option("auto", "what draws the avatar: stylegan2 (the paper's method, needs -g) or warp (a mesh "
                           "warp of the photo: no generator, seconds); auto: stylegan2 with -g, else warp",
                           choices=("auto", "stylegan2", "warp"))
    face: int = option(0, "which face, 0 = the largest", metavar="N")
    generator: str | None = option(None, "generator (path or cached model name)", flags=("-g",), metavar="G",
                                   group=STYLEGAN2)
    directions: str | None = option(None, "the direction matrix the avatar will be driven with (its hash is "
                                    "recorded so a mismatch is caught)", flags=("-d",), metavar="A.pt",
                                    group=STYLEGAN2)
    pti: bool = option(True, "pivotal tuning (--no-pti keeps the generator untouched)", group=STYLEGAN2)
    quality: str = option("auto", "fast: 150 inversion and 60 tuning steps, a few minutes on a CPU; high: 400 and "
                          "300, the measured defaults (13 min on 2 CPU cores, seconds on a GPU); auto: high on a GPU, "
                          "fast on the CPU", choices=("auto", "fast", "high"), group=STYLEGAN2)
    steps: int | None = option(None, "inversion steps; none: from --quality", group=STYLEGAN2)
    tune_steps: int | None = option(None, "pivotal tuning steps; none: from --quality", group=STYLEGAN2)
    identity_weight: float | None = option(None, "inversion's identity term: 1 - cosine of dlib's descriptors of "
                                           "the render and the photo crop (0 = off, pixels only); none: the measured "
                                           "default (live/avatar/invert.py, bench/RESULTS.md)", metavar="W",
                                           group=STYLEGAN2)
    perceptual_weight: float | None = option(None, "inversion's perceptual term: LPIPS-like distance of the face "
                                             "network's early features over the head (0 = off); none: the measured "
                                             "default (live/avatar/invert.py)", metavar="W", group=STYLEGAN2)
    tune_identity_weight: float | None = option(None, "pivotal tuning's identity term (0 = off); none: the measured "
                                                "default (live/avatar/pti.py)", metavar="W", group=STYLEGAN2)
    tune_perceptual_weight: float | None = option(None, "pivotal tuning's perceptual term (0 = off); none: the "
                                                  "measured default (live/avatar/pti.py)", metavar="W",
                                                  group=STYLEGAN2)
    framing: str | None = option(None, "how the generator's training faces were cropped; none: the registry's, "
                                 "else voxceleb", choices=("fixture", "voxceleb", "ffhq"), group=STYLEGAN2)
    encoder: str | None = option(None, "e4e encoder (path or cached name) as the starting point", flags=("-e",),
                                 metavar="E4E", group=STYLEGAN2)
    device: str = option("auto", "auto, cpu, cuda or cuda:N", group=STYLEGAN2)
    identity_threshold: float = option(0.5, "identity guard: how far each direction may move the face is where its "
                                       "dlib distance from the avatar's own render reaches this (same person: "
                                       "< 0.6); needs -d", group=STYLEGAN2)


@dataclass
class ShowCommand:
    avatar: str = option(help="an avatar file", positional=True, metavar="ME.pt")
    out: str | None = option(None, "write photo crop | reconstruction side by side", flags=("-o",), metavar="PNG")


def register(sub) -> None:
    p = sub.add_parser("avatar", help="make an avatar from one photo, and look inside one")
    asub = p.add_subparsers(dest="avatar_command", metavar="ACTION", required=True)
    add_command(asub, "create", create, "one photo -> me.pt (find, crop, invert, tune, track)", CreateCommand,
                description=CREATE_DESCRIPTION)
    add_command(asub, "show", show, "what is in an avatar file; the reconstruction beside the photo", ShowCommand)


def framing_of(generator_arg: str, store, weights_sha256: str) -> str:
    """The crop the generator was trained on: its registry entry's, or known by its weights, else the paper's."""
    from models.framing import KNOWN_FRAMINGS
    entry = store.registry.get(generator_arg)
    if entry is not None and entry.framing:
        return entry.framing
    if weights_sha256 in KNOWN_FRAMINGS:
        return KNOWN_FRAMINGS[weights_sha256]
    logger.warning("the framing of {} is not known: using voxceleb (the paper's); if its faces were cropped "
                   "otherwise, give --framing fixture|voxceleb|ffhq", generator_arg)
    return "voxceleb"


QUALITY = {"fast": (150, 60), "high": (400, 300)}    # (inversion, tuning) steps; fast: minutes on 2 CPU cores


def create(opts: CreateCommand, cfg) -> int:
    from pathlib import Path
    if Path(opts.out).is_dir() or not Path(opts.out).name or opts.out.endswith(("/", "\\")):
        raise ValueError(f"-o {opts.out}: give the avatar file's name, such as -o {Path(opts.out) / 'me.pt'}")
    renderer = opts.renderer if opts.renderer != "auto" else ("stylegan2" if opts.generator else "warp")
    if renderer == "warp":
        return create_warp(opts)
    if not opts.generator:
        raise ValueError("--renderer stylegan2 needs the generator: -g G.pt (or a cached name such as vox256)")
    return create_stylegan(opts)


def quality_meaning(db: float, likeness) -> str:
    """What a reconstruction means to a user: dlib's identity verdict first (a face that is someone else
    is never called recognisable, whatever its PSNR), then how closely it reproduces the crop."""
    if likeness is not None and not likeness.same_person:
        return (f"{db:.1f} dB, but NOT THE SAME PERSON: this generator draws someone else from this photo. Try "
                f"--quality high, another photo (frontal, even light), a generator trained on faces like this one "
                f"(`live gan train`), or the mesh-warp renderer (--renderer warp), which keeps the photo's own face")
    who = "the same person by dlib" if likeness is not None else "identity not judged (why: the warning above)"
    if db >= 26:
        return f"{db:.1f} dB, {who}: good, the generator reproduces this face closely"
    if db >= 21:
        return (f"{db:.1f} dB, {who}: fair, " + ("recognisable but softer" if likeness is not None else "softer")
                + "; --quality high (or a GPU) does better")
    return (f"{db:.1f} dB, {who}: poor, this generator cannot draw this face well; try --quality high, another photo, "
            f"or the mesh-warp renderer (--renderer warp)")


def create_warp(opts: CreateCommand) -> int:
    import time

    from live.warp.create_avatar import create_warp_avatar
    start = time.perf_counter()
    avatar = create_warp_avatar(opts.photo, opts.face)
    path = avatar.save(opts.out)
    print(f"avatar written to {path} (mesh warp, {time.perf_counter() - start:.1f} s)")
    print(f"  {avatar.photo.shape[1]}x{avatar.photo.shape[0]} px photo, {avatar.faces_in_photo} face(s) found"
          + (f", face {opts.face} used" if avatar.faces_in_photo > 1 else ""))
    print(f"  drive it: live run --avatar {path}")
    return 0


def face_weights(opts: CreateCommand) -> dict[str, dict[str, float]]:
    """The identity and perceptual weights given on the command line, per stage (the rest keep the configs'
    measured defaults); a clear error for a negative one."""
    given = {"inversion": {"identity_weight": opts.identity_weight, "perceptual_weight": opts.perceptual_weight},
             "tuning": {"identity_weight": opts.tune_identity_weight,
                        "perceptual_weight": opts.tune_perceptual_weight}}
    for stage, values in given.items():
        for name, value in values.items():
            if value is not None and value < 0:
                flag = ("--tune-" if stage == "tuning" else "--") + name.replace("_", "-")
                raise ValueError(f"{flag} must be >= 0 (0 turns the term off), got {value}")
    return {stage: {k: v for k, v in values.items() if v is not None} for stage, values in given.items()}


def create_stylegan(opts: CreateCommand) -> int:
    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig
    from live.avatar.pti import TuningConfig
    from live.engines.devices import resolve_device
    from live.model_store import ModelStore
    from models.checkpoint import load_generator, weights_hash
    from models.direction_matrix import Directions
    from models.weights_io import file_sha256
    weights = face_weights(opts)
    store = ModelStore()
    device = resolve_device(opts.device)
    G = load_generator(store.resolve(opts.generator), device)
    d_hash, directions = "", None
    if opts.directions:
        d_path = store.resolve(opts.directions)
        directions = Directions.load(d_path, require_ours=False)
        directions.check_live_space(d_path)
        directions.check_generator(weights_hash(G))
        d_hash = file_sha256(d_path)
    quality = opts.quality if opts.quality != "auto" else ("high" if device.type == "cuda" else "fast")
    steps = opts.steps or QUALITY[quality][0]
    tune_steps = opts.tune_steps or QUALITY[quality][1]
    framing = opts.framing or framing_of(opts.generator, store, weights_hash(G))
    print(f"making the avatar: framing {framing}, {steps} inversion + {tune_steps if opts.pti else 0} tuning steps "
          f"({quality} quality on {device}" + ("; --quality high for the long version)" if quality == "fast" else ")"))
    inversion = InversionConfig(steps=steps, **weights["inversion"])
    tuning = TuningConfig(steps=tune_steps, **weights["tuning"])
    options = AvatarOptions(framing=framing, face_index=opts.face,
                            pti=opts.pti, inversion=inversion, tuning=tuning,
                            encoder=store.resolve(opts.encoder) if opts.encoder else None,
                            identity_threshold=opts.identity_threshold)
    # the generator as `live run --avatar` will find it again: a model name, or the file's absolute path
    hint = opts.generator if opts.generator in store.index() else str(store.resolve(opts.generator).resolve())
    avatar, report = create_avatar(opts.photo, G, options, generator_hint=hint, directions_sha256=d_hash,
                                   directions=directions)
    path = avatar.save(opts.out)
    print(f"avatar written to {path}")
    final = report.psnr_tuned if opts.pti else report.psnr_inversion
    print(f"  framing {options.framing}, PSNR over the crop: inversion {report.psnr_inversion:.2f} dB"
          + (f", tuned {report.psnr_tuned:.2f} dB" if opts.pti else ""))
    if report.likeness is not None:
        print(f"  identity: {report.likeness.meaning()}")
    print(f"  {quality_meaning(final, report.likeness)}")
    if directions is None:
        print(f"  made without -d: it carries no direction matrix, so `live run -a {path}` needs one with it "
              f"(-d A.pt; `live directions fit -g {opts.generator} -o A.pt` makes one), or make it again with -d")
    print("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
          + f" (total {sum(report.seconds.values()):.1f} s on {device})")
    if device.type == "cpu":
        prepare_engine(path, G)
    return 0


def prepare_engine(avatar_path, G) -> None:
    """Build now the CPU engine `live run` will pick for this avatar, when that runtime caches its graph per set of
    weights (openvino, onnxruntime): the avatar's tuned weights are new, so its first run would otherwise convert
    the graph (seconds) instead of reading the cache (a fraction of one). Never fails the avatar."""
    import time

    from live.avatar.avatar_file import Avatar
    from live.config import EngineConfig
    from live.engines import BackendUnavailable, make_engine
    from live.engines.factory import resolve_engine_config
    from models.errors import first_line
    try:
        cfg = resolve_engine_config(EngineConfig(device="cpu"))
        if cfg.backend not in ("openvino", "onnxruntime"):
            return
        start = time.perf_counter()
        tuned = Avatar.load(avatar_path, G).generator     # the weights exactly as `live run` will rebuild them
        engine = make_engine(tuned, cfg)
        print(f"  engine prepared for live run: {engine.describe()} ({time.perf_counter() - start:.1f} s, once)")
    except BackendUnavailable as e:
        logger.info("no engine prepared for this avatar: {}", first_line(e, None))


def show(opts: ShowCommand, cfg) -> int:
    import cv2
    import numpy as np

    from live.avatar.avatar_file import WARP_FORMAT, Avatar, read_avatar_file
    from models.atomic_files import write_image_atomic as write_image
    from live.warp.warp_avatar import WarpAvatar
    from models.face.landmarks import PARAM_NAMES
    d = read_avatar_file(opts.avatar)
    if d["format"] == WARP_FORMAT:
        warp = WarpAvatar.from_dict(d, opts.avatar)
        print(f"avatar:       {opts.avatar} (mesh warp; created {warp.created} from {warp.source_photo})")
        print(f"photo:        {warp.photo.shape[1]}x{warp.photo.shape[0]} px, {warp.faces_in_photo} face(s)")
        print("p_s:          " + ", ".join(f"{n} {v:+.2f}" for n, v in zip(PARAM_NAMES, warp.p_s.tolist())))
        if opts.out:
            write_image(opts.out, warp.photo)
            print(f"photo written to {opts.out}")
        return 0
    a = Avatar.read(opts.avatar)
    size_mb = sum(v.numel() * 2 for v in a.tuned.values()) / 1e6
    print(f"avatar:       {opts.avatar} (created {a.created} from {a.source_photo})")
    print(f"generator:    sha256 {a.generator_sha256[:16]}... ({a.generator_hint or 'no hint'})")
    print(f"directions:   {('sha256 ' + a.directions_sha256[:16] + '...') if a.directions_sha256 else 'not recorded'}")
    print(f"code:         W+ {list(a.w_s.shape)}, framing {a.framing}, crop {a.crop.shape[1]} px of a "
          f"{a.photo_size[0]}x{a.photo_size[1]} photo")
    print("tuning:       " + (f"{len(a.tuned)} tensors, {size_mb:.1f} MB fp16" if a.tuned else "none"))
    print(f"PSNR (crop):  inversion {a.psnr_inversion:.2f} dB" +
          (f", tuned {a.psnr_tuned:.2f} dB" if a.tuned else ""))
    from live.avatar.likeness import judge_likeness
    judged = judge_likeness(a.crop, [a.reconstruction], None)    # dlib on the two images the file keeps
    print("identity:     " + (judged[0].meaning() if judged else "not judged (why: the warning above)"))
    print("p_s:          " + ", ".join(f"{n} {v:+.2f}" for n, v in zip(PARAM_NAMES, a.p_s.tolist())))
    if opts.out:
        write_image(opts.out, np.concatenate([a.crop, cv2.resize(a.reconstruction, a.crop.shape[1::-1])], axis=1))
        print(f"photo crop | reconstruction written to {opts.out}")
    return 0
