"""`live gan train` settings, in a module of their own so `--help` can show their defaults without
importing torch. Defaults follow the reference trainer (StyleGAN2 config-f)."""

from __future__ import annotations

from dataclasses import dataclass

from live.options import option


@dataclass
class TrainConfig:
    data: str = option(help="a folder made by `live gan dataset`", metavar="DIR")
    out: str = option(help="checkpoints, sample grids, log.jsonl; the same --out continues its last.pt",
                      flags=("-o",), metavar="DIR")
    resume: str | None = option(None, "generator to fine-tune (model name, .pt, .pkl, .safetensors) or a full "
                                "training checkpoint; none: train from scratch", metavar="G")
    resolution: int | None = option(None, "from scratch: training size; none: the images' size")
    channel_multiplier: int = option(2, "from scratch: network width")
    channel_max: int = option(512, "from scratch: widest layer")
    style_dim: int = option(512, "from scratch: W dimension")
    n_mlp: int = option(8, "from scratch: mapping layers")
    kimg: float = option(200.0, "total thousands of real images to show")
    batch: int = option(16, "images per step, over all processes")
    lr: float = option(0.002, "Adam learning rate (G and D)")
    r1_gamma: float = option(10.0, "R1 weight")
    d_reg_every: int = option(16, "R1 every N steps (lazy regularisation)", cli=False)
    g_reg_every: int = option(4, "path-length regularisation every N steps", cli=False)
    pl_weight: float = option(2.0, "path-length regularisation weight (0: off)")
    pl_batch_shrink: int = option(2, "path-length batch = batch / this", cli=False)
    style_mixing: float = option(0.9, "probability of mixing two codes")
    ema_kimg: float = option(10.0, "half-life of the EMA generator, thousands of images")
    d_warmup_kimg: float = option(1.0, "fine-tuning a generator that comes without its discriminator: train the "
                                  "new D alone this long before G moves")
    augment: str = option("color,translation,cutout", "DiffAugment policy, or none")
    amp: str = option("auto", "bf16 autocast: auto (on CUDA devices that support bf16), on, off",
                      choices=("auto", "on", "off"))
    snapshot_kimg: float = option(4.0, "checkpoint and sample grid interval, thousands of images")
    grid: int = option(4, "sample grid side (grid x grid images)", cli=False)
    grid_truncation: float = option(0.7, "truncation of the sample grid", cli=False)
    seed: int = option(0, "random seed (also picks the sample grid's codes)")
    workers: int = option(2, "data loader processes")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")

    def check(self) -> None:
        if self.batch < 2:
            raise ValueError("--batch must be at least 2 (the discriminator compares samples within a batch)")
        if self.kimg <= 0 or self.snapshot_kimg <= 0:
            raise ValueError("--kimg and --snapshot-kimg must be positive")
        from live.gan.augment import parse_policy
        parse_policy(self.augment)
