"""Command-line arguments generated from option dataclasses (live/options.py).

Each field becomes one argument: its flag from the field name (or `name=`), its type from the
annotation, its help and shown default from the field. Arguments default to None, meaning "not
given", so a config file's value survives unless the flag is on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import MISSING

from live.config import LiveConfig
from live.options import coerce, field_hints, is_section, parse_size, unwrap_optional


def _shown(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else "none"
    if value is None or value == "":
        return "none"
    return str(value)


def _default_of(f: dataclasses.Field):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def cli_fields(cls) -> list[dataclasses.Field]:
    """The fields of `cls` that appear on the command line (not sections, maps or cli=False)."""
    hints = field_hints(cls)
    return [f for f in dataclasses.fields(cls)
            if f.metadata.get("cli", True) and not is_section(f) and unwrap_optional(hints[f.name])[0] is not dict]


def add_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "", title: str | None = None,
                  leave_out: tuple[str, ...] = ()) -> None:
    """One argument per field of dataclass `cls` (but those named in `leave_out`); dest is `prefix + field name`."""
    target = parser.add_argument_group(title) if title else parser
    hints = field_hints(cls)
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    titled: dict[str, argparse._ArgumentGroup] = {}
    for f in cli_fields(cls):
        if f.name in leave_out:
            continue
        meta, (hint, _) = f.metadata, unwrap_optional(hints[f.name])
        default = _default_of(f)
        required = default is MISSING or meta.get("required", False)
        help_text = meta.get("help", "")
        if not required and not meta.get("positional"):
            shown = "x".join(default) if meta.get("parse") is parse_size else _shown(default)
            help_text += f" (default: {shown})"
        kw: dict = {"help": help_text}
        if meta.get("choices"):
            kw["choices"] = list(meta["choices"])
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        elif hint is not bool and not meta.get("choices"):
            kw["metavar"] = f.name.upper()
        is_list = hint is list or getattr(hint, "__origin__", None) is list
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif is_list and "parse" not in meta:      # (a parsed list, a size, is one value: 640x480)
            kw["nargs"] = meta.get("nargs", "+")
        elif hint in (int, float) and "parse" not in meta:
            kw["type"] = hint
        group = target
        if meta.get("group"):           # a titled group of options (those of one renderer, say)
            if meta["group"] not in titled:
                titled[meta["group"]] = parser.add_argument_group(meta["group"])
            group = titled[meta["group"]]
        if meta.get("exclusive"):
            if meta["exclusive"] not in exclusive:
                exclusive[meta["exclusive"]] = group.add_mutually_exclusive_group()
            group = exclusive[meta["exclusive"]]
        if meta.get("positional"):
            if default is not MISSING and not is_list:
                kw["nargs"] = "?"
            group.add_argument(prefix + f.name, default=None, **kw)
            continue
        if is_list and "parse" not in meta:
            kw["action"] = "extend"
        name = "--" + meta.get("name", f.name).replace("_", "-")
        group.add_argument(name, *meta.get("flags", ()), dest=prefix + f.name, default=None,
                           required=required, **kw)


def given_values(args: argparse.Namespace, cls, prefix: str = "") -> dict:
    """{field: value} for the fields of `cls` given on the command line, parsed and typed."""
    hints = field_hints(cls)
    out = {}
    for f in cli_fields(cls):
        value = getattr(args, prefix + f.name, None)
        if value is None:
            continue
        parse = f.metadata.get("parse")
        if isinstance(value, list):
            value = [part for item in value for part in str(item).split(",") if part]
            if parse is not None:
                value = parse(",".join(value))
        elif parse is not None:
            value = parse(value)
        out[f.name] = coerce(value, hints[f.name], "--" + f.metadata.get("name", f.name).replace("_", "-"))
    return out


def build(args: argparse.Namespace, cls, prefix: str = ""):
    """An instance of `cls`: the given values over the field defaults."""
    return cls(**given_values(args, cls, prefix))


def add_config_sections(parser: argparse.ArgumentParser, *sections: str, leave_out: tuple[str, ...] = ()) -> None:
    """The flags of these config sections (e.g. "run", "engine"), grouped, dest `section__field`; `leave_out`:
    "section.key" names a command does not use."""
    hints = field_hints(LiveConfig)
    for name in sections:
        skip = tuple(key.partition(".")[2] for key in leave_out if key.startswith(name + "."))
        add_arguments(parser, hints[name], prefix=f"{name}__", title=f"{name} (config keys {name}.*)", leave_out=skip)


def config_overrides(args: argparse.Namespace) -> dict:
    """{'section.key': value} for every config flag given on the command line."""
    out = {}
    for section, cls in field_hints(LiveConfig).items():
        for key, value in given_values(args, cls, prefix=f"{section}__").items():
            out[f"{section}.{key}"] = value
    return out


def add_command(sub: argparse._SubParsersAction, name: str, func, help: str, options=None,
                sections: tuple[str, ...] = (), description: str | None = None,
                leave_out: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A subcommand whose arguments are the fields of the dataclass `options` and the flags of the
    config `sections` (but the "section.key" ones in `leave_out`); it runs `func(options instance or None,
    config) -> exit status`."""
    p = sub.add_parser(name, help=help, description=description)
    if options is not None:
        add_arguments(p, options, prefix="opt__")
    for section in sections:
        add_config_sections(p, section, leave_out=leave_out)

    def handler(args: argparse.Namespace, cfg: LiveConfig) -> int:
        return func(build(args, options, prefix="opt__") if options is not None else None, cfg)
    p.set_defaults(func=handler)
    return p
