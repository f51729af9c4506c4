"""`live directions regressor` and `live directions train`: directions learned the way the paper learns them."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.directions.regressor_train import RegressorOptions
from live.directions.train_config import DirectionsTrainOptions
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
    from live.directions.train import DirectionTrainer, starting_matrix
    from live.engines.devices import resolve_device
    from live.gan.distributed import init_distributed
    from live.model_store import ModelStore
    from live.paths import cache_dir
    from models.checkpoint import load_generator
    opts.check()
    store = ModelStore()
    device = resolve_device(opts.device)
    dist = init_distributed(device)
    G = load_generator(store.resolve(opts.generator), device)
    losses = face_losses(opts, store)              # first: a missing network is said before minutes of fitting
    with rank_zero_first(dist):   # the first process fills the caches (samples, regressor); the others read them
        fitted = fit_for_generator(G, FitOptions(samples=opts.samples, truncation=opts.truncation,
                                                 layers=opts.layers), cache_dir() / "directions")
        regressor = load_or_train_regressor(opts, G, store)
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


def load_or_train_regressor(opts: DirectionsTrainOptions, G, store):
    """The regressor given, or the one cached for this generator and face model (trained now if missing)."""
    from live.cli.avatar_cmd import framing_of
    from live.directions.regressor_train import train_regressor
    from live.paths import cache_dir
    from models.checkpoint import weights_hash
    from models.face.landmarks import PARAM_NAMES
    from models.face.regressor import FaceParamRegressor
    from models.face.shape_model import default_model_path
    from models.weights_io import file_sha256
    if opts.regressor:
        return FaceParamRegressor.load(store.resolve(opts.regressor), PARAM_NAMES)
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
