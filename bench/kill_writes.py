"""SIGKILL at random moments while `live` writes a file: never a file under its final name that fails to
load, and the next run works (`python -m bench faults --kills N`, tests/test_faults.py).

Each command is timed once whole; then, N times, it is started afresh, killed (SIGKILL, its whole
process group) at a moment drawn uniformly over that time, and the result checked:
- every file under a final name loads (an avatar, a direction matrix, an engine's IR, the config);
- the command then runs to the end and succeeds, and no temporary file is left beside its outputs.
Every fourth kill is not at a random moment but the instant a writer's temporary file appears (the
folders polled every millisecond): inside a write for sure. Every other kill starts with the previous
output still there (a kill mid-rewrite must leave the old file whole), the others without it (a kill
mid-write must leave none). Kills that found a writer's temporary file behind them fell inside a write.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class KillTarget:
    name: str
    args: Callable[[Path], list[str]]            # the command, given the work folder
    outputs: Callable[[Path], list[Path]]        # final names it writes (that exist after it ran)
    load: Callable[[Path], None]                 # raises if a final file does not load
    fresh: Callable[[Path], None] = lambda work: None     # remove the outputs (not temporary files)
    watch: Callable[[Path], list[Path]] = field(default=lambda work: [work])   # folders for temporary files


def _load_warp_avatar(path: Path) -> None:
    from live.warp.warp_avatar import load_warp_avatar
    load_warp_avatar(path)


def _load_directions(path: Path) -> None:
    from models.direction_matrix import Directions
    Directions.load(path, require_ours=False)


def _load_engine_ir(path: Path) -> None:
    import openvino as ov
    ov.Core().read_model(str(path))


def _load_config(path: Path) -> None:
    from live.config_files import load_config
    load_config(path)


def targets(media: Path, fixture: Path) -> list[KillTarget]:
    photo = media / "portrait_einstein.jpg"
    engines = lambda w: w / "home" / "cache" / "engines"        # noqa: E731
    return [
        KillTarget("avatar create", lambda w: ["avatar", "create", str(photo), "-o", str(w / "me.pt")],
                   lambda w: [w / "me.pt"], _load_warp_avatar, lambda w: (w / "me.pt").unlink(missing_ok=True)),
        KillTarget("directions fit", lambda w: ["directions", "fit", "-g", str(fixture), "-o", str(w / "A.pt"),
                                                "--samples", "24"],
                   lambda w: [w / "A.pt"], _load_directions, lambda w: (w / "A.pt").unlink(missing_ok=True),
                   lambda w: [w, w / "home" / "cache" / "directions"]),
        KillTarget("engine cache", lambda w: ["run", "-g", str(fixture), "--frames", "2", "--sink", "null",
                                              "--backend", "openvino"],
                   lambda w: sorted(engines(w).glob("openvino-*.xml")), _load_engine_ir,
                   lambda w: [f.unlink() for f in engines(w).rglob("*") if f.is_file() and not f.name.startswith(".")],
                   lambda w: [engines(w), engines(w) / "openvino-compiled"]),
        KillTarget("config init", lambda w: ["config", "init", "--force"], lambda w: [w / "home" / "config" / "config.yaml"],
                   _load_config, lambda w: (w / "home" / "config" / "config.yaml").unlink(missing_ok=True),
                   lambda w: [w / "home" / "config"]),
    ]


def _start(target: KillTarget, work: Path) -> subprocess.Popen:
    env = {**os.environ, "LIVE_HOME": str(work / "home")}
    return subprocess.Popen([sys.executable, "-m", "live", *target.args(work)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _partials(target: KillTarget, work: Path) -> list[Path]:
    from models.atomic_files import is_partial
    return [f for folder in target.watch(work) if folder.is_dir() for f in folder.iterdir() if is_partial(f)]


def _run_whole(target: KillTarget, work: Path, timeout: float = 600) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = _start(target, work)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err, time.perf_counter() - start


def _kill_when_writing(target: KillTarget, work: Path, proc: subprocess.Popen) -> float:
    """SIGKILL the moment a temporary file appears beside an output (polled every millisecond), or at the end;
    returns when, in seconds from the start."""
    start = time.perf_counter()
    while proc.poll() is None and not _partials(target, work):
        time.sleep(0.001)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    return time.perf_counter() - start


def kill_at_random(target: KillTarget, work: Path, kills: int, seed: int = 0) -> dict:
    """`kills` SIGKILLs at random moments of `target`; the counts of what was found after each."""
    rng = np.random.default_rng(seed)
    work.mkdir(parents=True, exist_ok=True)
    rc, err, whole_s = _run_whole(target, work)
    if rc != 0:
        raise RuntimeError(f"{target.name} fails even without a kill: {err[-500:]}")
    broken, failed_after, inside_write, left_over = [], [], 0, 0
    for k in range(kills):
        if k % 2:
            target.fresh(work)                      # odd kills: no previous output
        proc = _start(target, work)
        if k % 4 == 3:       # every fourth: at the first sight of a temporary file (inside a write for sure)
            moment = _kill_when_writing(target, work, proc)
        else:
            moment = float(rng.uniform(0.0, whole_s))
            time.sleep(moment)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        inside_write += bool(_partials(target, work))
        for path in (p for p in target.outputs(work) if p.exists()):   # whatever is under a final name must load
            try:
                target.load(path)
            except Exception as e:
                broken.append(f"kill {k} at {moment:.2f} s: {path.name}: {str(e).splitlines()[0][:160]}")
        rc, err, _ = _run_whole(target, work)       # and the next run works, and cleans up
        if rc != 0:
            failed_after.append(f"kill {k} at {moment:.2f} s: the next run failed: {err.strip()[-300:]}")
        left = _partials(target, work)
        left_over += len(left)
        outputs = [p for p in target.outputs(work) if p.exists()]
        if not outputs:
            broken.append(f"after kill {k}'s next run: no output")
        for path in outputs:
            try:
                target.load(path)
            except Exception as e:
                broken.append(f"after kill {k}'s next run: {path.name}: {str(e).splitlines()[0][:160]}")
    return {"fault": f"SIGKILL during {target.name} ({kills}x)", "whole_s": round(whole_s, 1), "kills": kills,
            "inside_a_write": inside_write, "broken_files": broken, "next_run_failed": failed_after,
            "temporary_files_left": left_over, "recovered": not broken and not failed_after and left_over == 0}


def run_all(media: Path, fixture: Path, work: Path, kills: int, names: list[str] | None = None) -> list[dict]:
    results = []
    for target in targets(media, fixture):
        if names and target.name not in names:
            continue
        folder = work / target.name.replace(" ", "-")
        shutil.rmtree(folder, ignore_errors=True)
        results.append(kill_at_random(target, folder, kills))
    return results
