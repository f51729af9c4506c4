"""`live directions regressor` and `live directions train`: directions learned the way the paper learns them."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.directions.regressor_train import RegressorOptions
from live.directions.trainer_options import DirectionsTrainOptions
from live.options import option


@dataclass
class RegressorCommand(RegressorOptions):
    # required; given defaults only because the fields of RegressorOptions before them have defaults
    generator: str = option("", "generator (path or cached model name)", flags=("-g",), metavar="G", required=True)
    out: str = option("", "where to write the regressor (.safetensors)", flags=("-o",), metavar="R.safetensors",
                      required=True)


@dataclass
class TrainCommand(DirectionsTrainOptions):
    # required; given defaults only because the fields of DirectionsTrainOptions before them have defaults
    generator: str = option("", "generator (path or cached model name)", flags=("-g",), metavar="G", required=True)
    out: str = option("", "where to write the direction matrix (the paper's A_matrix.pt format)", flags=("-o",),
                      metavar="A.pt", required=True)


def register(dsub) -> None:
    add_command(dsub, "train", train, "train A as the paper does: reenactment, identity and perceptual losses",
                TrainCommand, description="Start from the closed-form fit (or zeros, or a given matrix) and train the "
                "per-layer shifts of the first W+ layers on generated source/target pairs: the shifted source must "
                "take the target's parameters (read by the face-parameter regressor), stay the same person (dlib's "
                "descriptor) and look the same (the face network's early features). Resumable: the same command "
                "continues from OUT.train.pt. Several GPUs: torchrun --nproc_per_node N -m live directions train ...")
    add_command(dsub, "regressor", regressor, "distil the face tracker into a differentiable regressor (what "
                "`directions train` measures faces with)", RegressorCommand,
                description="Render the generator's faces and cut real clips in its framing, track them all, and "
                "train a small CNN to give the tracker's 15 parameters and dlib's 5 face points from a crop. Its "
                "agreement with the tracker on held-out faces (a clip it never saw) is printed per parameter.")


def regressor(opts: RegressorCommand, cfg) -> int:
    from live.cli.avatar_cmd import framing_of
    from live.directions.regressor_train import train_regressor
    from live.engines.devices import resolve_device
    from live.model_store import ModelStore
    from live.paths import cache_dir
    from models.checkpoint import load_generator, weights_hash
    from pathlib import Path
    if not Path(opts.out).resolve().parent.is_dir():
        raise ValueError(f"-o {opts.out}: its folder does not exist; create it or choose another")
    store = ModelStore()
    G = load_generator(store.resolve(opts.generator), resolve_device(opts.device))
    framing = opts.framing or framing_of(opts.generator, store, weights_hash(G))
    net = train_regressor(G, opts, framing, cache_dir() / "directions")
    net.save(opts.out)
    print_agreement(net.info)
    print(f"wrote {opts.out} ({net.info.trained['faces']} training faces, {net.info.trained['seconds']} s)")
    return 0


def print_agreement(info) -> None:
    from live.cli.table import print_table
    from models.face.landmarks import PARAM_NAMES
    for name, a in info.agreement.items():
        if not a:
            continue
        rows = [{"parameter": p, "r2": a["r2"][p], "mae": a["mean_abs_error"][p]} for p in PARAM_NAMES]
        print_table(f"agreement with the tracker, {name} ({a['faces']} faces; 5 points off by "
                    f"{a['points_error_pct']}% of the crop on average)", rows,
                    [("parameter", "parameter"), ("r2", "R^2 (1 = the tracker's answers)"),
                     ("mae", "mean error (deg / sd)")])
    logger.info("R^2: the share of the tracker's variation the regressor reproduces (1: all of it, 0: none; below 0: "
                "worse than the mean). Directions are trained against it: a parameter it cannot read is one they "
                "cannot learn.")


def train(opts: TrainCommand, cfg) -> int:
    from pathlib import Path

    from live.directions.fit import FitOptions, fit_for_generator
    from live.directions.trainer import FIRST_RUN_WAIT_MINUTES, DirectionTrainer, starting_matrix
    from live.engines.devices import resolve_device
    from live.gan.distributed import init_distributed, process_device
    from live.model_store import ModelStore
    from live.paths import cache_dir
    from models.checkpoint import load_generator
    from models.direction_matrix import Directions
    opts.check()
    if not Path(opts.out).resolve().parent.is_dir():
        raise ValueError(f"-o {opts.out}: its folder does not exist; create it or choose another")
    store = ModelStore()
    device = process_device(resolve_device(opts.device))
    dist = init_distributed(device, FIRST_RUN_WAIT_MINUTES)
    G = load_generator(store.resolve(opts.generator), device)
    # Everything a user gave is read first: a bad file is said before minutes of sampling and training.
    losses = face_losses(opts, store)
    given_regressor = load_given_regressor(opts, G, store) if opts.regressor else None
    if opts.init not in ("fit", "zero"):
        Directions.load(opts.init).check_live_space(opts.init)
    with rank_zero_first(dist):   # the first process fills the caches (samples, regressor); the others read them
        # the regressor first: for a generator that draws no faces its message says so (the fit's would not)
        regressor = given_regressor or load_or_train_regressor(opts, G, store)
        fitted = fit_for_generator(G, FitOptions(samples=opts.samples, truncation=opts.truncation,
                                                 layers=opts.layers), cache_dir() / "directions")
    trainer = DirectionTrainer(G, regressor, losses, starting_matrix(opts, fitted), opts, Path(opts.out))
    directions = trainer.run()
    if trainer.dist.main:
        directions.save(opts.out)
        trainer.snapshot_path.unlink(missing_ok=True)
        terms = directions.fit_info["final_terms"]
        print(f"wrote {opts.out}: {trainer.step} steps in {directions.fit_info['seconds']} s; last 20 steps: "
              + ", ".join(f"{k} {v}" for k, v in terms.items()))
        print("  `python -m bench directions -g G -d A.pt` measures its edits (slope, identity kept) against the "
              "closed-form fit's")
    return 0


def face_losses(opts: DirectionsTrainOptions, store):
    """The identity and perceptual terms: dlib's network for both, or the paper's ArcFace for identity."""
    from models.identity.dlib_resnet import load_dlib_face_resnet
    from models.identity.face_losses import ArcFaceLosses, FaceLosses
    if opts.identity_network == "arcface":
        from models.identity.arcface import build_arcface
        return ArcFaceLosses(build_arcface(store.resolve("arcface-ir-se50")), load_dlib_face_resnet())
    return FaceLosses(load_dlib_face_resnet())


@contextlib.contextmanager
def rank_zero_first(dist):
    """Under torchrun: process 0 runs the block first, the others after it (they find its caches)."""
    import torch.distributed as td
    if dist.world > 1 and not dist.main:
        td.barrier()
    yield
    if dist.world > 1 and dist.main:
        td.barrier()


def load_given_regressor(opts: DirectionsTrainOptions, G, store):
    """--regressor, checked: it reads this project's parameters, with today's face model, in this generator's
    framing (a regressor for other crops or another face model measures other numbers)."""
    from live.cli.avatar_cmd import framing_of
    from models.checkpoint import weights_hash
    from models.face.landmarks import PARAM_NAMES
    from models.face_regressor import FaceParamRegressor, RegressorError
    from models.face.shape_model import default_model_path
    from models.weights_io import file_sha256
    net = FaceParamRegressor.load(store.resolve(opts.regressor), PARAM_NAMES)
    model_sha = file_sha256(default_model_path())
    if net.info.face_model_sha256 and net.info.face_model_sha256 != model_sha:
        raise RegressorError(f"{opts.regressor} was trained against another face model ({net.info.face_model_sha256[:12]}"
                             f", this one is {model_sha[:12]}): make one with `live directions regressor -g G -o R`")
    framing = framing_of(opts.generator, store, weights_hash(G))
    if net.info.framing and net.info.framing != framing:
        raise RegressorError(f"{opts.regressor} reads faces in the {net.info.framing} framing; this generator draws "
                             f"the {framing} framing: make one with `live directions regressor -g G -o R`")
    return net


def load_or_train_regressor(opts: DirectionsTrainOptions, G, store):
    """The regressor cached for this generator and face model (trained now if missing)."""
    from live.cli.avatar_cmd import framing_of
    from live.directions.regressor_train import train_regressor
    from live.paths import cache_dir
    from models.checkpoint import weights_hash
    from models.face.landmarks import PARAM_NAMES
    from models.face_regressor import FaceParamRegressor
    from models.face.shape_model import default_model_path
    from models.weights_io import file_sha256
    g_hash = weights_hash(G)
    path = cache_dir() / "directions" / f"regressor-{g_hash[:16]}-{file_sha256(default_model_path())[:12]}.safetensors"
    if path.is_file():
        logger.info("face-parameter regressor for this generator: {}", path)
        return FaceParamRegressor.load(path, PARAM_NAMES)
    logger.info("no face-parameter regressor for this generator yet: training one (minutes; `live directions "
                "regressor` makes one with other settings)")
    net = train_regressor(G, RegressorOptions(device=opts.device), framing_of(opts.generator, store, g_hash),
                          cache_dir() / "directions")
    net.save(path)
    print_agreement(net.info)
    return net
