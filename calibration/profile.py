"""Calibration profiles: a user's neutral face, stored as YAML (readable) + NPZ (arrays)
in <config dir>/profiles/, loaded by name or by path."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from models.face.landmarks import PARAM_NAMES

PROFILE_VERSION = 1
# a profile's name becomes its files' names: letters, digits, '-', '_' and '.', not starting with '.' (no
# folders, no hidden files, nothing a shell or another platform would read differently)
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProfileError(ValueError):
    """A profile that cannot be found or read; the message says what to do."""


RESERVED_ON_WINDOWS = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def check_profile_name(name: str) -> str:
    """`name` if it can be a profile's file name; else ProfileError saying what a name may hold."""
    if not PROFILE_NAME.match(name or "") or name.split(".")[0].lower() in RESERVED_ON_WINDOWS:
        raise ProfileError(f"profile name {name!r} cannot be a file name: use up to 64 letters, digits, '-', '_' "
                           f"or '.', starting with a letter or digit (for example: --name office)")
    return name


@dataclass
class CalibrationProfile:
    name: str
    neutral: np.ndarray          # [15] robust neutral parameters (median of the still window)
    spread: np.ndarray           # [15] their median absolute deviation in the window
    template: np.ndarray         # [478, 3] median landmark shape, pose-normalised (model frame)
    frames: int
    source: str = ""
    created: str = field(default_factory=lambda: dt.datetime.now().isoformat(timespec="seconds"))

    def neutral_named(self) -> dict[str, float]:
        return {n: round(float(v), 4) for n, v in zip(PARAM_NAMES, self.neutral)}

    def save(self, folder: str | Path) -> Path:
        """<folder>/<name>.npz (arrays) then <name>.yaml (what is looked up), each written whole or not at all."""
        from models.atomic_files import save_npz_atomic, write_text_atomic
        check_profile_name(self.name)
        folder = Path(folder)
        doc = {"version": PROFILE_VERSION, "name": self.name, "created": self.created, "source": self.source,
               "frames": self.frames, "neutral": self.neutral_named(),
               "spread": {n: round(float(v), 4) for n, v in zip(PARAM_NAMES, self.spread)}}
        path = folder / f"{self.name}.yaml"
        save_npz_atomic(folder / f"{self.name}.npz", template=self.template.astype(np.float32),
                        neutral=self.neutral, spread=self.spread)
        write_text_atomic(path, yaml.safe_dump(doc, sort_keys=False))
        return path

    @classmethod
    def load(cls, name_or_path: str | Path, folder: str | Path) -> "CalibrationProfile":
        """A profile by name (in `folder`, the user's profiles folder) or by the path of its .yaml file."""
        path = Path(name_or_path)
        if path.suffix != ".yaml" and path.parent != Path("."):     # a path given without its .yaml
            path = path.with_name(path.name + ".yaml")
        elif path.suffix != ".yaml":
            path = Path(folder) / f"{check_profile_name(str(name_or_path))}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in Path(folder).glob("*.yaml"))
            raise ProfileError(f"no calibration profile {str(name_or_path)!r} (looked for {path}); "
                               f"known profiles: {', '.join(known) or 'none'}. Make one with `live calibrate`.")
        try:
            doc = yaml.safe_load(path.read_text())
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as arrays:
                template, neutral, spread = arrays["template"], arrays["neutral"], arrays["spread"]
        except (OSError, KeyError, ValueError, yaml.YAMLError) as e:
            raise ProfileError(f"calibration profile {path} is damaged ({e}); run `live calibrate` again") from None
        if not isinstance(doc, dict) or doc.get("version") != PROFILE_VERSION:
            raise ProfileError(f"{path}: not a calibration profile of version {PROFILE_VERSION}; run `live calibrate` again")
        if neutral.shape != (len(PARAM_NAMES),) or template.ndim != 2:
            raise ProfileError(f"{path}: arrays of the wrong shape; run `live calibrate` again")
        return cls(name=doc["name"], neutral=neutral.astype(np.float64), spread=spread.astype(np.float64),
                   template=template.astype(np.float64), frames=int(doc["frames"]), source=str(doc.get("source", "")),
                   created=str(doc.get("created", "")))
