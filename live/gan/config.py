"""`live gan train` settings, in a module of their own so the CLI can show their defaults
without importing torch. Defaults follow the reference trainer (StyleGAN2 config-f)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    data: str
    out: str
    resume: str | None = None          # a generator (fine-tune) or a full training checkpoint
    resolution: int | None = None      # from scratch: default = the images' size
    channel_multiplier: int = 2        # from scratch: the reference widths
    channel_max: int = 512
    style_dim: int = 512
    n_mlp: int = 8
    kimg: float = 200.0                # thousands of real images shown, in total
    batch: int = 16                    # over all processes
    lr: float = 0.002
    r1_gamma: float = 10.0
    d_reg_every: int = 16
    g_reg_every: int = 4
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    style_mixing: float = 0.9
    ema_kimg: float = 10.0             # half-life of the generator average, in thousands of images
    d_warmup_kimg: float = 1.0         # fine-tuning a generator without its D: train D alone this long first
    augment: str = "color,translation,cutout"
    amp: str = "auto"                  # auto: bf16 on CUDA, off on the CPU; or on / off
    snapshot_kimg: float = 4.0
    grid: int = 4                      # sample grid side (grid x grid images)
    grid_truncation: float = 0.7
    seed: int = 0
    workers: int = 2
    device: str = "auto"

    def check(self) -> None:
        if self.batch < 2:
            raise ValueError("--batch must be at least 2 (the discriminator compares samples within a batch)")
        if self.kimg <= 0 or self.snapshot_kimg <= 0:
            raise ValueError("--kimg and --snapshot-kimg must be positive")
        from live.gan.augment import parse_policy
        parse_policy(self.augment)
