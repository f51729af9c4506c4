"""Settings of `live directions train` (the CLI is generated from them; defaults are the fixture's, measured on
2 CPU cores: bench/RESULTS.md, "Trained directions")."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from live.options import option

# Settings that change what is being trained: a resumed run must keep them (the rest may change).
FIXED_ON_RESUME = ("layers", "shift_scale", "truncation", "batch", "pool", "single_share", "reenactment_weight",
                   "identity_weight", "perceptual_weight", "identity_network", "init", "seed",
                   "samples", "regressor")   # the fit's ranges normalise delta_p; the regressor measures it


@dataclass
class DirectionsTrainOptions:
    regressor: str | None = option(None, "face-parameter regressor (`live directions regressor` makes one); none: "
                                         "trained now for this generator (minutes) and cached", metavar="R")
    init: str = option("fit", "starting matrix: fit (the closed-form fit, cached samples), zero, or a direction "
                              "matrix file", metavar="fit|zero|A.pt")
    samples: int = option(600, "samples of the closed-form fit that gives the parameter ranges (and `fit`'s start)")
    steps: int = option(120, "training steps (the fixture's measured default on a CPU; the paper trains 100,000 at "
                             "batch 12 on a GPU)")
    pool: int = option(384, "source/target faces rendered and read once, pairs drawn from them (pool^2 pairs)")
    batch: int = option(8, "source/target pairs per step (over all processes)")
    lr: float = option(2e-3, "AdamW learning rate (cosine decay); weight decay 5e-4 as the paper's (decoupled)")
    reenactment_weight: float = option(1.0, "the shifted face must take the target's parameters (the regressor's "
                                            "reading, in its [-1, 1] units)")
    identity_weight: float = option(1.0, "the shifted face must stay the source's person (1 - cos of dlib's "
                                         "descriptors)")
    perceptual_weight: float = option(0.5, "the shifted head must look like the source's (LPIPS-like distance of the "
                                           "face network's early features)")
    identity_network: str = option("dlib", "the identity term's network: dlib (its face descriptor, offline) or "
                                           "arcface (the paper's IR-SE-50, `live models fetch arcface-ir-se50`)",
                                   choices=("dlib", "arcface"))
    single_share: float = option(0.5, "share of pairs that change one parameter only, to a random place in its "
                                      "range (the paper's disentanglement: half the batch)")
    truncation: float = option(0.7, "truncation psi of the source and target codes")
    layers: int = option(8, "W+ layers the shift moves (the paper's 8)")
    shift_scale: float = option(6.0, "each parameter's range is mapped to [-shift_scale, shift_scale] (the paper's 6)")
    snapshot_every: int = option(50, "steps between resumable snapshots (OUT.train.pt; the same command continues)")
    amp: str = option("auto", "bf16 autocast: auto (CUDA devices with bf16), on, off", choices=("auto", "on", "off"))
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    seed: int = option(0, "random seed")

    def check(self) -> None:
        if self.steps < 1 or self.batch < 2 or self.pool < 2 or self.snapshot_every < 1:
            raise ValueError("--steps and --snapshot-every must be at least 1, --batch and --pool at least 2")
        if self.shift_scale <= 0:
            raise ValueError("--shift-scale must be positive")
        if not 0 <= self.single_share <= 1:
            raise ValueError("--single-share is a share: 0 to 1")
        if min(self.reenactment_weight, self.identity_weight, self.perceptual_weight) < 0:
            raise ValueError("loss weights cannot be negative")

    def fixed(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in FIXED_ON_RESUME}
