"""`live config show|init|path`: the effective configuration, documented."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.options import option
from models.atomic_files import write_text_atomic


@dataclass
class InitCommand:
    force: bool = option(False, "overwrite an existing file")


def register(sub) -> None:
    p = sub.add_parser("config", help="show, create or locate the configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    add_command(csub, "show", show, "print the effective config as documented YAML")
    add_command(csub, "init", init, "write the documented defaults to the user config file", InitCommand)
    add_command(csub, "path", path, "print where the user config file is")


def show(_, cfg) -> int:
    from live.config_files import to_yaml
    sys.stdout.write(to_yaml(cfg))
    return 0


def init(opts: InitCommand, cfg) -> int:
    from live.config import LiveConfig
    from live.config_files import to_yaml
    from live.paths import user_config_file
    file = user_config_file()
    if file.exists() and not opts.force:
        logger.error("{} exists already; use --force to overwrite it", file)
        return 1
    write_text_atomic(file, to_yaml(LiveConfig()))
    print(file)
    return 0


def path(_, cfg) -> int:
    from live.paths import user_config_file
    print(user_config_file())
    return 0
