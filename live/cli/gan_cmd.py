"""`live gan dataset|train`: fine-tuning StyleGAN2 on talking-head video."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from live.cli.arguments import add_command
from live.gan.dataset import DatasetOptions
from live.gan.train_config import TrainConfig
from live.options import option


@dataclass
class DatasetCommand(DatasetOptions):
    # required; given defaults only because the fields of DatasetOptions before them have defaults
    videos: list = option([], "talking-head clips", positional=True, nargs="+", metavar="VIDEO")
    out: str = option("", "the dataset folder to write", flags=("-o",), metavar="DIR", required=True)


def register(sub) -> None:
    p = sub.add_parser("gan", help="fine-tune StyleGAN2 on talking-head video: make the dataset, train")
    gsub = p.add_subparsers(dest="gan_command", metavar="ACTION", required=True)
    add_command(gsub, "dataset", dataset, "videos -> face crops with a generator's framing (PNG + dataset.json)",
                DatasetCommand, description="Track every frame, crop it with the generator's framing, smooth the "
                "crop over time so head motion stays in the picture, skip frames without a face and near-identical "
                "frames.")
    add_command(gsub, "train", train, "train or fine-tune a StyleGAN2 on a folder of face crops", TrainConfig,
                description="StyleGAN2's objective (non-saturating loss, lazy R1, path-length regularisation, EMA "
                "generator) with differentiable augmentation for small datasets. Checkpoints in the reference "
                "format; running the same command again on the same --out continues from its last.pt. Several "
                "GPUs: torchrun --nproc_per_node N -m live gan train ...")


def dataset(opts: DatasetCommand, cfg) -> int:
    from live.gan.dataset import build_dataset
    options = DatasetOptions(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(DatasetOptions)})
    r = build_dataset(opts.videos, opts.out, options)
    print(f"{r.written} images in {opts.out} from {r.clips} clip(s): {r.frames} frames, a face in {r.with_face}, "
          f"{r.duplicates} near-duplicates skipped")
    return 0


def train(opts: TrainConfig, cfg) -> int:
    from live.gan.train import Trainer
    from live.model_store import ModelStore
    if opts.resume:
        opts.resume = str(ModelStore().resolve(opts.resume))
    trainer = Trainer(opts)
    try:
        report = trainer.run()
    finally:
        trainer.close()
    faces = f"; a face in {report.faces_in_grid[0]} of {report.faces_in_grid[1]} samples" if report.faces_in_grid else ""
    print(f"{report.kimg:.2f} kimg in {report.steps} steps, {report.images_per_second:.1f} img/s; "
          f"checkpoint {report.last_checkpoint}{faces}")
    return 0
