"""The optimisation loop of inversion and pivotal tuning: steps, a progress bar with the
reconstruction quality so far, and the pixel loss per step."""

from __future__ import annotations

from typing import Callable

from loguru import logger

from models.image_metrics import psnr_from_mse

LOG_EVERY_S = 30.0


def psnr_db(mse: float) -> float:
    """PSNR in dB of an MSE over images in [-1, 1]."""
    return psnr_from_mse(mse, 2.0)


def optimise(steps: int, step: Callable[[int], tuple[float, float]], label: str, progress: bool = True) -> list[float]:
    """Run `step(i) -> (loss, pixel mse)` for i in 0..steps-1; return the pixel mse per step."""
    import time

    from rich.progress import Progress
    history = []
    start = last_log = time.perf_counter()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(label, total=steps)
        for i in range(steps):
            loss, mse = step(i)
            history.append(mse)
            bar.update(task, advance=1, description=f"{label}: loss {loss:.4f}, {psnr_db(mse):.1f} dB")
            now = time.perf_counter()
            if progress and now - last_log >= LOG_EVERY_S:   # a line now and then: a bar is invisible in a log
                last_log = now
                left = (now - start) / (i + 1) * (steps - i - 1)
                logger.info("{}: step {}/{}, {:.1f} dB PSNR so far, about {:.0f} s left", label, i + 1, steps,
                            psnr_db(mse), left)
    if history:
        logger.debug("{}: {} steps, final mse {:.5f}", label, steps, history[-1])
    return history
