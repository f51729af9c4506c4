"""The errors of the weight formats: each message says what the file is, what was expected, what to do."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weights file that cannot be used."""


class CheckpointError(WeightsError):
    """A file that is not a generator (or encoder) checkpoint we can load."""


class DirectionsError(WeightsError):
    """A file that is not a usable direction matrix."""
