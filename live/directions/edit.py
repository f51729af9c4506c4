"""Single-attribute editing (`live edit`): set parameters to values, or sweep one over a range.

Values are raw parameters (degrees for pose, standard deviations for expressions), applied as
changes from the face's own tracked parameters: delta_p = p_set - p_source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from live.directions.sampling import codes_for_seeds
from live.io.sinks import FileSink
from models.atomic_files import write_image_atomic as write_image
from models.direction_matrix import Directions, reenact
from models.face.landmarks import PARAM_NAMES
from models.face.params import ImageParams
from models.images import image_grid, images_to_uint8, to_uint8_rgb


def parse_assignments(items: list[str]) -> dict[str, float]:
    """['yaw=20', 'jaw=3'] -> {'yaw': 20.0, 'jaw': 3.0}, with names checked."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in PARAM_NAMES:
            raise ValueError(f"bad --set {item!r}: use NAME=VALUE with NAME one of {', '.join(PARAM_NAMES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"bad --set {item!r}: {value!r} is not a number") from None
    return out


def parse_sweep(spec: str, steps: int) -> tuple[str, np.ndarray]:
    """'yaw=-30:30' -> ('yaw', evenly spaced values)."""
    name, sep, rng = spec.partition("=")
    lo, sep2, hi = rng.partition(":")
    if not sep or not sep2 or name not in PARAM_NAMES:
        raise ValueError(f"bad --sweep {spec!r}: use NAME=LO:HI with NAME one of {', '.join(PARAM_NAMES)}")
    try:
        return name, np.linspace(float(lo), float(hi), steps)
    except ValueError:
        raise ValueError(f"bad --sweep {spec!r}: LO and HI must be numbers") from None


class Editor:
    def __init__(self, G, directions: Directions, w_plus: torch.Tensor):
        self.G, self.d, self.w_plus = G, directions, w_plus
        tracker = ImageParams()
        with torch.no_grad():
            image = G.synthesize(w_plus, impl="static")
        p, _ = tracker(images_to_uint8(image))
        tracker.close()
        if not np.isfinite(p).all():
            raise ValueError("no face found in the source image, so its parameters are unknown: "
                             "try another seed, a lower --truncation, or another avatar")
        self.p_source = torch.from_numpy(p[0]).float()
        self.source_image = image

    def render(self, targets: list[dict[str, float]]) -> torch.Tensor:
        """One image per target assignment: [N, 3, R, R]."""
        p_t = self.p_source.repeat(len(targets), 1)
        for i, t in enumerate(targets):
            for name, value in t.items():
                p_t[i, PARAM_NAMES.index(name)] = value
        dw = reenact(self.d, self.p_source.expand_as(p_t), p_t)
        with torch.no_grad():
            return self.G.synthesize(self.d.apply(self.w_plus.expand(len(targets), -1, -1), dw), impl="static")


def source_code(G, seed: int, truncation: float) -> torch.Tensor:
    return G.broadcast(codes_for_seeds(G, [seed], truncation))


def write_edits(editor: Editor, fixed: dict[str, float], sweep: str | None, steps: int, out: str | Path) -> str:
    """The source beside its edit (an image), or a sweep of one parameter (an mp4 going there and back, or
    an image strip); returns a line saying what was written."""
    out = Path(out)
    if sweep:
        name, values = parse_sweep(sweep, steps)
        frames = to_uint8_rgb(editor.render([{**fixed, name: float(v)} for v in values]))
        if out.suffix.lower() == ".mp4":
            sink = FileSink(out, fps=15)
            for f in np.concatenate([frames, frames[::-1]]):
                sink.write(f)
            sink.close()
        else:
            write_image(out, image_grid(frames, cols=len(frames)))
        return f"swept {name} over {values[0]:g}..{values[-1]:g} in {len(values)} steps -> {out}"
    pair = to_uint8_rgb(torch.cat([editor.source_image, editor.render([fixed])]))
    write_image(out, image_grid(pair, cols=2))
    return f"source | edited ({', '.join(f'{k}={v:g}' for k, v in fixed.items())}) -> {out}"
