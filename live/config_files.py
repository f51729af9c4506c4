"""Reading and writing the config: YAML files and dotted overrides merged over the defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from live.config import LiveConfig
from live.options import ConfigError, coerce, field_hints, parse_size


def _merge_map(current: dict, value, key: str) -> dict:
    """Maps (per-parameter values) are updated key by key; unknown keys are errors."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping like {{yaw: 1.0}}, got {value!r}")
    out = dict(current)
    for k, v in value.items():
        if k not in current:
            raise ConfigError(f"unknown key {key}.{k}; valid keys: {', '.join(current)}")
        out[k] = coerce(v, float, f"{key}.{k}")
    return out


def _merge(node, data: dict, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping of keys, got {data!r}")
    hints = field_hints(type(node))
    fields = {f.name: f for f in dataclasses.fields(node)}
    names = set(fields)
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}; valid keys here: {', '.join(sorted(names))}")
        current = getattr(node, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value or {}, path + ".")
        elif isinstance(current, dict):
            setattr(node, key, _merge_map(current, value, path))
        else:
            parse = fields[key].metadata.get("parse")
            if parse is not None and isinstance(value, str):     # (a size written as on the command line: 640x480)
                try:
                    value = parse(value)
                except ConfigError as e:
                    raise ConfigError(f"{path}: {e}") from None
            value = coerce(value, hints[key], path)
            _check_choices(value, fields[key].metadata.get("choices"), path)
            setattr(node, key, value)


def _check_choices(value, choices, key: str) -> None:
    """A value (or each of a list's) among the option's allowed ones, as the command line checks its flags."""
    if not choices or value is None:
        return
    for v in value if isinstance(value, list) else [value]:
        if v not in choices:
            raise ConfigError(f"{key}: {v!r} is not one of {', '.join(map(str, choices))}")


def load_config(*paths: str | Path | None, overrides: dict[str, object] | None = None) -> LiveConfig:
    """Defaults, then each YAML file that is given, then dotted overrides like {'engine.backend': 'eager'}."""
    cfg = LiveConfig()
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        try:
            _merge(cfg, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        nested: dict = {leaf: value}
        for p in reversed(parents):
            nested = {p: nested}
        _merge(cfg, nested)
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg, comments: bool = True) -> str:
    """The config as YAML; with comments, each key is preceded by its documentation."""
    if not comments:
        return yaml.safe_dump(to_dict(cfg), sort_keys=False)
    lines: list[str] = []

    def emit(node, indent: int) -> None:
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            pad = "  " * indent
            if dataclasses.is_dataclass(value):
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
                continue
            if "help" in f.metadata:
                lines.append(f"{pad}# {f.metadata['help']}")
            if f.metadata.get("parse") is parse_size and isinstance(value, list):
                value = "x".join(map(str, value))            # written as the flag takes it: 640x480
            dumped = yaml.safe_dump({f.name: value}, default_flow_style=True, width=10_000, sort_keys=False).strip()
            lines.append(pad + dumped.removeprefix("{").removesuffix("}"))
    emit(cfg, 0)
    return "\n".join(lines) + "\n"
