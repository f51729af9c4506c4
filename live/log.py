"""Logging set-up: loguru to stderr (and optionally a file), one place for the format."""

from __future__ import annotations

import sys

from loguru import logger


def setup_logging(level: str = "INFO", file: str | None = None) -> None:
    logger.remove()
    logger.add(sys.stderr, level=level.upper(),
               format="<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}")
    if file:
        logger.add(file, level="DEBUG", rotation="10 MB")
