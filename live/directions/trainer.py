"""`live directions train`: the matrix A learned the way the paper learns it (Bounareli et al. 2022, Sec. 3).

A pool of source/target faces is rendered once and read with the face-parameter regressor
(models/face_regressor.py); each step draws pairs from it. The change delta_p (normalised to [-6, 6] per
parameter) asks A for
a shift of each of the first 8 W+ layers; the source moved by it is rendered, and three terms push A:
- reenactment: the regressor's reading of the shifted face must be the source's parameters with the
  change applied (the target's, or for the single-parameter half of the batch, the source's with one
  parameter moved by a random amount within its range: the paper's disentanglement term);
- identity: the shifted face must stay the source's person (dlib's descriptor, models/identity/face_losses.py);
- perceptual: the shifted head must look like the source's (early features of the same network).
The generator is frozen; only A (a linear map, 15 -> layers x 512, as the paper's `A_matrix.pt`) learns.
Its parameter ranges are the closed-form fit's (the generator's own samples), so files of either kind
normalise the driver's change alike. A snapshot every few steps (OUT.train.pt) lets the same command
continue; the matrix itself is written once, at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger

from live.directions.trainer_options import DirectionsTrainOptions
from live.gan.distributed import close_distributed, init_distributed, process_device, sync_gradients
from live.gan.train_state import resolve_amp
from models.direction_matrix import Directions
from models.errors import DirectionsError
from models.atomic_files import save_torch_atomic
from models.weights_io import safe_torch_load

FIRST_RUN_WAIT_MINUTES = 180   # under torchrun rank 0 may train the regressor while the others wait

TERMS = {"reenactment": "parameter error of the shifted face (regressor units: 1 = the tracker's whole range)",
         "identity": "1 - cos to the source's dlib descriptor (same person: under about 0.07 on this network)",
         "perceptual": "feature distance to the source's head (0: identical)"}


class DirectionTrainer:
    def __init__(self, G, regressor, losses, start: Directions, opts: DirectionsTrainOptions, out: Path):
        from live.engines.devices import resolve_device
        opts.check()
        self.opts, self.out = opts, Path(out)
        self.device = process_device(resolve_device(opts.device))
        self.dist = init_distributed(self.device, FIRST_RUN_WAIT_MINUTES)
        if opts.batch % self.dist.world:
            raise ValueError(f"--batch {opts.batch} must divide among the {self.dist.world} processes")
        self.amp = resolve_amp(opts.amp, self.device)
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.R = regressor.to(self.device).eval().requires_grad_(False)
        self.losses = losses.to(self.device)
        self.start = start
        self.A = torch.nn.Linear(start.n_params, start.num_layers_shift * start.shift_dim).to(self.device)
        with torch.no_grad():
            self.A.weight.copy_(start.weight)
            self.A.bias.copy_(start.bias)
        span = (start.param_range[:, 1] - start.param_range[:, 0]).to(self.device, torch.float32)
        self.lo, self.to_norm = start.param_range[:, 0].to(self.device, torch.float32), 2 * opts.shift_scale / span
        # Decoupled decay (AdamW): Adam's coupled L2 is normalised like the gradient, so on a matrix started
        # from a fit, whose loss gradients are small, it shrank every direction at the learning rate itself.
        self.optimiser = torch.optim.AdamW(self.A.parameters(), lr=opts.lr, weight_decay=5e-4)
        self.step = 0
        self.pool: dict | None = None
        self.history: list[dict] = []
        self.rng = torch.Generator().manual_seed(opts.seed + 1000 * self.dist.rank)
        self.snapshot_path = self.out.with_name(self.out.name + ".train.pt")
        self._resume()

    # -- one step ------------------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def build_pool(self) -> None:
        """Source and target faces for the whole run, rendered and read once: codes, the regressor's parameters
        and points, the identity and perceptual references. Steps then draw pairs from it (pool^2 pairs, and
        the single-parameter half moves by fresh random amounts), so a step renders only the shifted faces."""
        G, opts, m = self.G, self.opts, self.opts.pool
        rng = torch.Generator().manual_seed(opts.seed)      # the same pool on every rank
        codes, params, points, embeds, feats = [], [], [], [], []
        with torch.no_grad():
            for start in range(0, m, 16):
                z = torch.randn(min(16, m - start), G.style_dim, generator=rng).to(self.device)
                with self._autocast():
                    w = G.mapping(z, opts.truncation)
                    x = G.synthesize(G.broadcast(w), impl="static").float()
                p, pts = self.R(x)      # fp32 (small): bf16 points would be whole pixels off and move the chips
                codes.append(w.float())
                params.append(p.float())
                points.append(pts.float())
                embeds.append(self.losses.embed(x, pts))
                feats.append(self.losses.perceptual_features(x, pts))
        self.pool = {"w": torch.cat(codes), "p": torch.cat(params), "points": torch.cat(points),
                     "embed": torch.cat(embeds), "features": [torch.cat(level) for level in zip(*feats)]}

    def pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Indices of n sources in the pool, the normalised change delta_p [n, P] and the parameters it aims at."""
        opts = self.opts
        src = torch.randint(0, opts.pool, (n,), generator=self.rng)
        tgt = torch.randint(0, opts.pool, (n,), generator=self.rng)
        p_s, p_t = self.pool["p"][src.to(self.device)], self.pool["p"][tgt.to(self.device)]
        delta = (p_t - p_s) * self.to_norm
        single = torch.rand(n, generator=self.rng) < opts.single_share
        if single.any():   # one parameter only, anywhere in its range from where the source is
            k = torch.randint(0, delta.shape[1], (n,), generator=self.rng).to(self.device)
            position = (p_s - self.lo) * self.to_norm - opts.shift_scale          # the source in [-6, 6]
            u = torch.rand(n, generator=self.rng).to(self.device)
            rows = torch.arange(n, device=self.device)
            one = torch.zeros_like(delta)
            one[rows, k] = -opts.shift_scale - position[rows, k] + u * 2 * opts.shift_scale
            delta = torch.where(single.to(self.device)[:, None], one, delta)
        return src.to(self.device), delta, p_s + delta / self.to_norm

    def train_step(self) -> dict:
        opts, G = self.opts, self.G
        if self.pool is None:
            self.build_pool()
        n = opts.batch // self.dist.world
        src, delta, aim = self.pairs(n)
        shift = self.A(delta).view(n, self.start.num_layers_shift, self.start.shift_dim)
        w_plus = G.broadcast(self.pool["w"][src]).clone()
        w_plus[:, : self.start.num_layers_shift] += shift
        with self._autocast():
            x = G.synthesize(w_plus, impl="static").float()
        p, pts = self.R(x)
        terms = {"reenactment": F.smooth_l1_loss(self.R.to_normalised(p.float()), self.R.to_normalised(aim), beta=0.05),
                 "identity": self.losses.identity(x, pts.detach(), self.pool["embed"][src]).mean(),
                 "perceptual": self.losses.perceptual(x, pts.detach(), [f[src] for f in self.pool["features"]]).mean()}
        loss = (opts.reenactment_weight * terms["reenactment"] + opts.identity_weight * terms["identity"]
                + opts.perceptual_weight * terms["perceptual"])
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(self.A, self.dist)
        for group in self.optimiser.param_groups:
            group["lr"] = opts.lr * 0.5 * (1 + math.cos(math.pi * self.step / opts.steps))
        self.optimiser.step()
        self.step += 1
        return {k: round(v.item(), 5) for k, v in terms.items()}

    # -- the run -------------------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> Directions:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        opts = self.opts
        start = time.perf_counter()
        columns = [TextColumn("training directions"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
        if self.step < opts.steps:
            logger.info("loss terms: " + "; ".join(f"{k}: {v}" for k, v in TERMS.items()))
        try:
            with Progress(*columns, disable=not (progress and self.dist.main)) as bar:
                task = bar.add_task("train", total=opts.steps, completed=self.step, info="")
                window: list[dict] = []
                last_log = time.perf_counter()
                while self.step < opts.steps:
                    terms = self.train_step()
                    window = (window + [terms])[-20:]
                    mean = {k: float(np.mean([t[k] for t in window])) for k in terms}
                    self.history.append({"step": self.step, **terms})
                    info = "  ".join(f"{k} {v:.4f}" for k, v in mean.items())
                    bar.update(task, completed=self.step, info=info)
                    if time.perf_counter() - last_log >= 60 and self.dist.main:   # a log file shows no bar
                        last_log = time.perf_counter()
                        logger.info("step {}/{}: {}", self.step, opts.steps, info)
                    if self.step % opts.snapshot_every == 0 and self.step < opts.steps:
                        self._snapshot()
        except KeyboardInterrupt:
            self._snapshot()
            logger.warning("interrupted at step {}; saved {}: run the same command to continue", self.step,
                           self.snapshot_path)
            raise
        finally:
            close_distributed(self.dist)
        self._snapshot()        # removed once the matrix is saved: a failed save loses no step
        return self.result(time.perf_counter() - start)

    def result(self, seconds: float) -> Directions:
        last = self.history[-20:]
        info = {"method": "trained (reenactment, identity, perceptual)", **self.opts.fixed(),
                "steps": self.step, "lr": self.opts.lr, "seconds": round(seconds, 1), "amp_bf16": self.amp,
                "regressor": self.opts.regressor or "trained for this generator",
                "final_terms": {k: round(float(np.mean([h[k] for h in last])), 4) for k in TERMS} if last else {},
                "start": self.start.fit_info.get("method", "")}
        return Directions(weight=self.A.weight.detach().float().cpu(), bias=self.A.bias.detach().float().cpu(),
                          param_range=self.start.param_range.clone(), num_layers_shift=self.start.num_layers_shift,
                          shift_dim=self.start.shift_dim, shift_scale=self.opts.shift_scale,
                          param_names=self.start.param_names, generator_sha256=self.start.generator_sha256,
                          face_model_sha256=self.start.face_model_sha256, fit_info=info)

    # -- resuming ------------------------------------------------------------------------------------------
    def _snapshot(self) -> None:
        if not self.dist.main:
            return
        save_torch_atomic({"format": "live.directions.trainer", "step": self.step, "options": asdict(self.opts),
                           "A": {k: v.detach().cpu() for k, v in self.A.state_dict().items()},
                           "optimiser": self.optimiser.state_dict(), "rng": self.rng.get_state(),
                           "history": self.history, "generator_sha256": self.start.generator_sha256}, self.snapshot_path)

    def _resume(self) -> None:
        if not self.snapshot_path.is_file():
            return
        state = safe_torch_load(self.snapshot_path, DirectionsError, "a snapshot of `live directions train`")
        if not isinstance(state, dict) or state.get("format") != "live.directions.trainer":
            raise DirectionsError(f"{self.snapshot_path}: not a snapshot of `live directions train`; remove it or "
                                  f"choose another -o")
        if state["generator_sha256"] != self.start.generator_sha256:
            raise DirectionsError(f"{self.snapshot_path} trains directions for another generator; remove it, or "
                                  f"choose another -o")
        was = {k: state["options"].get(k) for k in self.opts.fixed()}
        changed = {k: (was[k], v) for k, v in self.opts.fixed().items() if was[k] != v}
        if changed:
            said = ", ".join(f"--{k.replace('_', '-')} {old} (now {new})" for k, (old, new) in changed.items())
            raise DirectionsError(f"{self.snapshot_path} was started with {said}: run with the same settings to "
                                  f"continue, or remove it to start again (nothing was overwritten)")
        self.A.load_state_dict(state["A"])
        self.optimiser.load_state_dict(state["optimiser"])
        if self.dist.world == 1:
            self.rng.set_state(state["rng"])
        else:   # the snapshot holds rank 0's state only: each rank draws its own pairs from here on
            self.rng.manual_seed(self.opts.seed + 1000 * self.dist.rank + 1_000_003 * int(state["step"]))
        self.step, self.history = int(state["step"]), list(state["history"])
        logger.info("continuing {} from step {} of {}", self.snapshot_path, self.step, self.opts.steps)


def starting_matrix(opts: DirectionsTrainOptions, fitted: Directions) -> Directions:
    """What training starts from: the closed-form fit, zeros with its ranges, or a given matrix."""
    if opts.init == "fit":
        return fitted
    if opts.init == "zero":
        zero = fitted.to("cpu")
        zero.weight, zero.bias = torch.zeros_like(fitted.weight), torch.zeros_like(fitted.bias)
        zero.fit_info = {"method": "zero"}
        return zero
    given = Directions.load(opts.init)
    given.check_live_space(opts.init)
    given.check_generator(fitted.generator_sha256)
    if given.num_layers_shift != opts.layers or given.shift_dim != fitted.shift_dim:
        raise DirectionsError(f"{opts.init} shifts {given.num_layers_shift} layers of {given.shift_dim} values; "
                              f"this generator and --layers need {opts.layers} of {fitted.shift_dim}")
    if given.shift_scale != opts.shift_scale:
        raise DirectionsError(f"{opts.init} scales parameters to [-{given.shift_scale}, {given.shift_scale}]; "
                              f"--shift-scale is {opts.shift_scale}: use the same")
    given.generator_sha256 = given.generator_sha256 or fitted.generator_sha256   # the result says whose it is
    return given        # with its own parameter ranges: its weights are in their units
