"""The errors of the weight formats: each message says what the file is, what was expected, what to do."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weights file that cannot be used."""


class CheckpointError(WeightsError):
    """A file that is not a generator (or encoder) checkpoint we can load."""


class DirectionsError(WeightsError):
    """A file that is not a usable direction matrix."""


def first_line(error: BaseException, limit: int | None = 300) -> str:
    """The first line of an error's message, cut to `limit` characters (third-party messages can run to
    pages), or the error's type name when it has no message (`str(e).splitlines()[0]` fails on those)."""
    lines = str(error).strip().splitlines()
    text = lines[0].strip() if lines else type(error).__name__
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    end = cut.rfind(". ")          # whole sentences where one ends within the limit, else whole words
    if end > limit // 3:
        return cut[:end + 1]
    space = cut.rfind(" ")
    return cut[:space].rstrip(",;:") + " ..." if space > limit // 3 else cut
