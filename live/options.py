"""Documented, typed option fields: the one place an option's default, type and help live.

Config sections (live/config.py) and command arguments (live/cli/) are dataclasses whose
fields are made with `option()`. The YAML config, `live config show` and every command's
`--help` are generated from them, so a default is written once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, field


class ConfigError(ValueError):
    """A config file, override or flag that does not fit; the message names the key."""


def option(default=MISSING, help: str = "", **cli):
    """A field with its documentation attached.

    cli: how the command line shows it (all optional):
      flags=("-g",)      extra flag spellings; name="sink" the long flag (default: the field name)
      positional=True    a positional argument; nargs="+"/"*" for lists
      choices=(...)      allowed values; metavar="PATH"
      parse=callable     text -> value (e.g. "640x480" -> [640, 480])
      exclusive="group"  mutually exclusive with the other fields of that group
      group="title"      listed in --help under that title, with the other fields that name it
      cli=False          config file only
    """
    metadata = {"help": help, **cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def unwrap_optional(hint):
    """X | None -> (X, True); X -> (X, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def coerce(value, hint, key: str):
    """A value from YAML or the command line as the field's type; ConfigError naming `key` if it does not fit."""
    hint, optional = unwrap_optional(hint)
    if value is None and optional:
        return None
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return str(value)
    if hint is list or typing.get_origin(hint) is list:
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [str(v) for v in value]
    return value


def field_hints(cls) -> dict:
    return typing.get_type_hints(cls)


def parse_size(text: str) -> list[str]:
    """'640x480' -> ['640', '480'] (width, height)."""
    w, sep, h = str(text).lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise ConfigError(f"expected a size like 640x480, got {text!r}")
    return [w, h]


def is_section(f: dataclasses.Field) -> bool:
    return f.default_factory is not MISSING and dataclasses.is_dataclass(f.default_factory)
