"""StyleGAN2 training and fine-tuning (`live gan train`).

The standard objective of Karras et al. 2020, as the reference PyTorch trainer runs it:
non-saturating logistic loss; R1 on real images every `d_reg_every` steps (lazy, scaled up by
that interval); path-length regularisation every `g_reg_every` steps on half a batch; style
mixing; an exponential moving average of the generator (the one that is saved and used);
Adam (0, 0.99) with the learning rate and betas adjusted for the lazy intervals. Differentiable
augmentation (live/gan/augment.py) for small datasets, bf16 autocast for the main passes on
CUDA (the regularisers, which differentiate twice, stay fp32).

Checkpoints are the reference trainer's format (g, d, g_ema, g_optim, d_optim, args,
latent_avg), so `load_generator` and the paper's code read them; our training state sits beside
them under `live_train`. `out/last.pt` is rewritten atomically at every snapshot and a run
started again on the same folder continues from it; `out/g_ema-KKKKKK.KKKkimg.pt` keeps each snapshot's
generator alone (small, what `-g` takes). Each snapshot also writes a sample grid and counts the
samples in which the face tracker finds a face: the quick check that a fine-tune still draws faces.

Several GPUs: start the same command with `torchrun --nproc_per_node N -m live gan train ...`;
each process takes batch / N images (live/gan/distributed.py).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from live.engines.devices import resolve_device
from live.gan.augment import diff_augment, parse_policy
from live.gan.distributed import (
    broadcast_module,
    close_distributed,
    init_distributed,
    process_device,
    sync_gradients,
)
from live.gan.image_folder import ImageFolder, infinite_batches, list_images, read_crop
from live.gan.losses import d_logistic, g_nonsaturating, path_length_penalty, r1_penalty
from live.gan.train_config import TrainConfig
from live.gan.train_state import (
    check_optimiser,
    ema_update,
    load_discriminator,
    load_training_checkpoint,
    make_optimisers,
    requires_grad,
    resolve_amp,
    save_training_checkpoint,
)
from models.atomic_files import write_image_atomic
from models.checkpoint import (
    build_from_state,
    load_generator,
    save_reference_checkpoint,
)
from models.discriminator import Discriminator
from models.images import image_grid, images_to_uint8, to_uint8_rgb
from models.stylegan2 import Generator, GeneratorArch

LAST = "last.pt"


@dataclass
class TrainReport:
    kimg: float
    steps: int
    seconds: float
    images_per_second: float
    last_checkpoint: str
    faces_in_grid: tuple[int, int] | None


# --- the trainer -------------------------------------------------------------------------------

class Trainer:
    def __init__(self, cfg: TrainConfig):
        cfg.check()
        self.cfg = cfg
        self.device = process_device(resolve_device(cfg.device))   # under torchrun on CUDA: this rank's GPU
        self.dist = init_distributed(self.device)
        self.amp = resolve_amp(cfg.amp, self.device)
        if cfg.batch % self.dist.world:
            raise ValueError(f"--batch {cfg.batch} must be divisible by the {self.dist.world} processes")
        self.local_batch = cfg.batch // self.dist.world
        self.policy = parse_policy(cfg.augment)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed + self.dist.rank)
        np.random.seed(cfg.seed + self.dist.rank)
        self.state = {"kimg": 0.0, "step": 0, "mean_path_length": 0.0, "from": None, "fresh_d": False}
        self._build()
        self.dataset = ImageFolder(cfg.data, self.G.resolution)
        sampler = None
        if self.dist.world > 1:
            sampler = torch.utils.data.distributed.DistributedSampler(
                self.dataset, num_replicas=self.dist.world, rank=self.dist.rank, seed=cfg.seed, drop_last=True)
        self.batches = infinite_batches(self.dataset, self.local_batch, sampler, cfg.workers, cfg.seed)
        self.grid_z = torch.from_numpy(np.random.RandomState(cfg.seed).randn(cfg.grid ** 2, self.G.style_dim)).float()

    # Where the networks come from, in order: out/last.pt (an interrupted run continues), a
    # full training checkpoint given with --resume, a generator alone (fine-tuning: D starts
    # fresh), or nothing (from scratch).
    def _build(self) -> None:
        cfg, last = self.cfg, self.out / LAST
        source = last if last.is_file() else (Path(cfg.resume) if cfg.resume else None)
        full = load_training_checkpoint(source) if source is not None else None
        if full is not None:
            clamp = getattr(full.get("args"), "conv_clamp", None)
            G = build_from_state(full["g"], full.get("latent_avg"), f"{source} (g)", clamp).train()
            G_ema = build_from_state(full["g_ema"], full.get("latent_avg"), f"{source} (g_ema)", clamp)
            D = load_discriminator(full["d"], G.arch, str(source))
            self.state.update(full.get("live_train") or {})
            if source != last:  # a checkpoint of another run: its weights, but this run's counters
                self.state.update({"kimg": 0.0, "step": 0, "from": str(source), "fresh_d": False})
            logger.info("resuming from {} at {:.3f} kimg", source, self.state["kimg"])
        elif source is not None:
            G_ema = load_generator(source)
            G = copy.deepcopy(G_ema)
            D = Discriminator(G.arch)
            self.state.update({"from": str(source), "fresh_d": True})
            logger.info("fine-tuning {} ({} px); it holds no discriminator, so D starts from random weights "
                        "and trains alone for the first {:g} kimg (--d-warmup-kimg)", source, G.resolution,
                        cfg.d_warmup_kimg)
        else:
            res = cfg.resolution or _first_image_size(cfg.data)
            arch = GeneratorArch.standard(res, cfg.channel_multiplier, cfg.channel_max, cfg.style_dim, cfg.n_mlp)
            G = Generator(arch)
            G.estimate_w_avg(n=2048, seed=cfg.seed)
            G_ema = copy.deepcopy(G)
            D = Discriminator(arch)
            logger.info("training from scratch: {} px, widths {}", res, list(arch.channels))
        if cfg.resolution and cfg.resolution != G.resolution:
            raise ValueError(f"--resolution {cfg.resolution} differs from the {G.resolution} px generator "
                             f"being resumed; leave it out or start from scratch in another folder")
        self.G, self.D = G.to(self.device).train().requires_grad_(True), D.to(self.device).train()
        self.G_ema = G_ema.to(self.device).eval().requires_grad_(False)
        broadcast_module(self.G, self.dist)
        broadcast_module(self.D, self.dist)
        broadcast_module(self.G_ema, self.dist)
        self.g_opt, self.d_opt = make_optimisers(self.G, self.D, cfg)
        if full is not None and "g_optim" in full and "d_optim" in full:
            try:
                self.g_opt.load_state_dict(full["g_optim"])
                self.d_opt.load_state_dict(full["d_optim"])
                check_optimiser(self.g_opt)
                check_optimiser(self.d_opt)
            except (ValueError, KeyError) as e:
                logger.warning("{}: optimiser state does not fit ({}); starting Adam afresh", source, e)
                self.g_opt, self.d_opt = make_optimisers(self.G, self.D, cfg)
            for opt, ratio in ((self.g_opt, cfg.g_reg_every), (self.d_opt, cfg.d_reg_every)):
                for group in opt.param_groups:  # this run's learning rate, not the file's
                    group["lr"] = cfg.lr * ratio / (ratio + 1)
        self.mean_path = torch.tensor(float(self.state["mean_path_length"]), device=self.device)

    def close(self) -> None:
        close_distributed(self.dist)

    # -- sampling --
    def _w_plus(self, G: Generator, n: int) -> torch.Tensor:
        """Mapped codes as W+ [n, L, S], two codes crossed at a random layer with p = style_mixing."""
        L = G.n_latent
        z = torch.randn(2, n, G.style_dim, device=self.device)
        w = G.style(z.flatten(0, 1)).view(2, n, 1, G.style_dim)
        if self.cfg.style_mixing > 0 and np.random.random() < self.cfg.style_mixing:
            cut = int(np.random.randint(1, L))
        else:
            cut = L
        layer = torch.arange(L, device=self.device)[None, :, None]
        return torch.where(layer < cut, w[0], w[1])

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def _d(self, images: torch.Tensor) -> torch.Tensor:
        return self.D(diff_augment(images, self.policy) if self.policy else images)

    # -- one step --
    def step(self, real: torch.Tensor) -> dict:
        cfg, step, n = self.cfg, self.state["step"], real.shape[0]
        stats = {}
        # Discriminator.
        requires_grad(self.G, False)
        requires_grad(self.D, True)
        with self._autocast():
            fake = self.G.synthesis(self._w_plus(self.G, n), noise_mode="random")
            d_loss = d_logistic(self._d(real), self._d(fake.detach()))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        sync_gradients(self.D, self.dist)
        self.d_opt.step()
        stats["d_loss"] = float(d_loss.detach())
        if step % cfg.d_reg_every == 0:
            real_req = real.detach().requires_grad_(True)
            real_logits = self._d(real_req)
            r1 = r1_penalty(real_logits, real_req)
            self.d_opt.zero_grad(set_to_none=True)
            # "+ 0 * logits": keeps every D parameter in the graph (its gradient defined, zero).
            (cfg.r1_gamma / 2 * r1 * cfg.d_reg_every + 0 * real_logits[0, 0]).backward()
            sync_gradients(self.D, self.dist)
            self.d_opt.step()
            stats["r1"] = float(r1.detach())
        # Generator. A random D fine-tuning a trained G gives it random gradients: measured on the
        # fixture at lr 0.002, 50 such steps took G's samples to 14 dB of where they started. So
        # while a fresh D warms up, G waits.
        if self.state.get("fresh_d") and self.state["kimg"] < cfg.d_warmup_kimg:
            return self._finish_step(stats, n, step)
        requires_grad(self.G, True)
        requires_grad(self.D, False)
        with self._autocast():
            fake = self.G.synthesis(self._w_plus(self.G, n), noise_mode="random")
            g_loss = g_nonsaturating(self._d(fake))
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        sync_gradients(self.G, self.dist)
        self.g_opt.step()
        stats["g_loss"] = float(g_loss.detach())
        if cfg.pl_weight > 0 and step % cfg.g_reg_every == 0:
            w_plus = self._w_plus(self.G, max(1, n // cfg.pl_batch_shrink))
            images = self.G.synthesis(w_plus, noise_mode="random")
            pl, self.mean_path, length = path_length_penalty(images, w_plus, self.mean_path)
            self.g_opt.zero_grad(set_to_none=True)
            (cfg.pl_weight * cfg.g_reg_every * pl + 0 * images[0, 0, 0, 0]).backward()
            sync_gradients(self.G, self.dist)
            self.g_opt.step()
            stats["path_length"] = float(length)
        return self._finish_step(stats, n, step)

    def _finish_step(self, stats: dict, n: int, step: int) -> dict:
        cfg = self.cfg
        # Moving average of G: half-life ema_kimg thousand images (ramped up from scratch so
        # the first, random, weights are forgotten quickly).
        shown = self.state["kimg"] * 1000 + n * self.dist.world
        ema_images = cfg.ema_kimg * 1000
        if self.state["from"] is None:
            ema_images = min(ema_images, max(shown * 0.05, 1.0))
        ema_update(self.G_ema, self.G, 0.5 ** (n * self.dist.world / ema_images))
        self.state["step"] = step + 1
        self.state["kimg"] = shown / 1000
        self.state["mean_path_length"] = float(self.mean_path)
        for k, v in stats.items():
            if not math.isfinite(v):
                raise FloatingPointError(f"{k} became {v} at step {step}; lower --lr or --r1-gamma, "
                                         f"and resume from {self.out / LAST}")
        return stats

    # -- snapshots --
    @torch.no_grad()
    def grid_images(self) -> torch.Tensor:
        """The fixed grid codes through the EMA generator: [grid^2, 3, R, R] in about [-1, 1]."""
        G = self.G_ema
        w = G.mapping(self.grid_z.to(self.device), self.cfg.grid_truncation)
        return torch.cat([G.synthesize(chunk, noise_mode="const") for chunk in w.split(8)]).float().cpu()

    def snapshot(self) -> dict:
        self.G_ema.estimate_w_avg(n=4096, seed=self.cfg.seed)  # truncation centre of the current weights
        save_training_checkpoint(self.out / LAST, self.G, self.D, self.G_ema, self.g_opt, self.d_opt, self.state)
        kimg = self.state["kimg"]
        g_path = save_reference_checkpoint(self.G_ema.cpu(), self.out / f"g_ema-{kimg:010.3f}kimg.pt")
        self.G_ema.to(self.device)
        images = self.grid_images()
        grid_path = self.out / f"samples-{kimg:010.3f}kimg.png"
        write_image_atomic(grid_path, image_grid(to_uint8_rgb(images), cols=self.cfg.grid))
        faces = count_faces(images)
        logger.info("snapshot at {:.3f} kimg: {}, grid {}, {}", kimg, g_path.name, grid_path.name,
                    "a face in {} of {} samples".format(*faces) if faces else "faces not counted")
        return {"kimg": round(kimg, 3), "step": self.state["step"], "checkpoint": str(g_path), "grid": str(grid_path),
                "faces_in_grid": list(faces) if faces else None}

    def run(self, progress: bool = True) -> TrainReport:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        cfg = self.cfg
        log_path = self.out / "log.jsonl"
        next_snapshot = (math.floor(self.state["kimg"] / cfg.snapshot_kimg) + 1) * cfg.snapshot_kimg
        start_kimg, start = self.state["kimg"], time.perf_counter()
        record, window, last_stats, last_log = None, [], {}, time.perf_counter()
        if self.state["kimg"] >= cfg.kimg:
            logger.info("{} already holds {:.1f} kimg (asked for {}): nothing to do; raise --kimg to go on",
                        self.out / LAST, self.state["kimg"], cfg.kimg)
        columns = [TextColumn("training"), BarColumn(), TextColumn("{task.completed:.2f}/{task.total:g} kimg"),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
        if self.state["step"] == 0 and self.dist.main:
            # Where the run starts: for a fine-tune, the grid and face count of the generator as given.
            record = {**self.snapshot(), "seconds": 0.0}
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        with Progress(*columns, disable=not (progress and self.dist.main)) as bar:
            task = bar.add_task("train", total=cfg.kimg, completed=self.state["kimg"], info="")
            while self.state["kimg"] < cfg.kimg:
                t0 = time.perf_counter()
                real = next(self.batches).to(self.device, non_blocking=True)
                try:
                    last_stats = self.step(real)
                except KeyboardInterrupt:
                    # Ctrl-C: keep what was trained since the last snapshot; the same command continues.
                    if self.dist.main:
                        save_training_checkpoint(self.out / LAST, self.G, self.D, self.G_ema, self.g_opt,
                                                 self.d_opt, self.state)
                        logger.warning("interrupted at {:.3f} kimg; saved {}: run the same command to continue",
                                       self.state["kimg"], self.out / LAST)
                    raise
                window.append((real.shape[0] * self.dist.world, time.perf_counter() - t0))
                window = window[-50:]
                ips = sum(n for n, _ in window) / sum(t for _, t in window)
                bar.update(task, completed=min(self.state["kimg"], cfg.kimg),
                           info=f"D {last_stats['d_loss']:.3f}  G {last_stats.get('g_loss', float('nan')):.3f}  "
                                f"{ips:.1f} img/s")
                if time.perf_counter() - last_log >= 60:   # the bar is invisible in a log file
                    last_log = time.perf_counter()
                    logger.info("{:.3f}/{:g} kimg, step {}: D {:.3f}, G {:.3f}, {:.1f} img/s", self.state["kimg"],
                                cfg.kimg, self.state["step"], last_stats["d_loss"], last_stats.get("g_loss", float("nan")), ips)
                done = self.state["kimg"] >= cfg.kimg
                if self.state["kimg"] >= next_snapshot or done:
                    next_snapshot += cfg.snapshot_kimg
                    if self.dist.main:
                        record = {**self.snapshot(), **last_stats, "images_per_second": round(ips, 2),
                                  "seconds": round(time.perf_counter() - start, 1)}
                        with open(log_path, "a") as f:
                            f.write(json.dumps(record) + "\n")
        seconds = time.perf_counter() - start
        shown = (self.state["kimg"] - start_kimg) * 1000
        faces = tuple(record["faces_in_grid"]) if record and record["faces_in_grid"] else None
        return TrainReport(kimg=self.state["kimg"], steps=self.state["step"], seconds=round(seconds, 1),
                           images_per_second=round(shown / seconds, 2) if seconds > 0 else 0.0,
                           last_checkpoint=str(self.out / LAST), faces_in_grid=faces)


def _first_image_size(folder: str) -> int:
    return int(read_crop(list_images(folder)[0]).shape[0])


def count_faces(images: torch.Tensor) -> tuple[int, int] | None:
    """(samples in which the tracker finds a face, samples) for images [N, 3, R, R] in [-1, 1]; None where
    the tracker is not installed (a machine without MediaPipe trains all the same)."""
    from models.face.tracker import MediaPipeTracker
    try:
        with MediaPipeTracker(max_faces=1, video=False) as tracker:
            return sum(bool(tracker.track(img).found) for img in images_to_uint8(images)), len(images)
    except ImportError as e:
        logger.warning("no face count in the sample grids: the face tracker cannot load here ({})", e)
        return None
