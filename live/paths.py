"""Where `live` keeps its files: the platform's user dirs, or everything under $LIVE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "live"


def _home() -> Path | None:
    value = os.environ.get("LIVE_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    return (_home() / "config") if _home() else Path(platformdirs.user_config_dir(APP))


def cache_dir() -> Path:
    return (_home() / "cache") if _home() else Path(platformdirs.user_cache_dir(APP))


def data_dir() -> Path:
    return (_home() / "data") if _home() else Path(platformdirs.user_data_dir(APP))


def user_config_file() -> Path:
    return config_dir() / "config.yaml"


def profiles_dir() -> Path:
    """Calibration profiles (`live calibrate`)."""
    return config_dir() / "profiles"


def clean_stale_partials_in_user_dirs() -> list[Path]:
    """Remove what writers killed mid-write left in the user dirs (models/atomic_files.py): run at every start."""
    from models.atomic_files import clean_stale_partials
    removed: list[Path] = []
    for folder in dict.fromkeys((config_dir(), cache_dir(), data_dir())):
        removed += clean_stale_partials(folder, recursive=True)
    return removed
