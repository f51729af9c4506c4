"""The `live` command: one parser assembled from the command modules, config loading, errors.

Each command module registers its subcommands with `register(sub)`; a handler is
`func(args, cfg) -> exit status`. Options come from dataclasses (live/cli/arguments.py); commands
that use the config tree get its sections as flags, so `--help` shows each key's default.
"""

from __future__ import annotations

import argparse
import sys

from loguru import logger

from live import __version__
from live.cli.arguments import add_arguments, config_overrides
from live.config import LiveConfig, LogConfig

DESCRIPTION = """\
live: real-time face puppeteering through StyleGAN2 latent directions.

An avatar made from one photo moves with your face in a virtual camera, after
Bounareli et al., "Finding Directions in GAN's Latent Space for Neural Face
Reenactment" (BMVC 2022). Run `live COMMAND --help` for each command.
"""

EPILOG = """\
configuration: defaults < user config file (`live config path`) < --config FILE < flags.
files: config, models and caches live in the platform's user dirs, or under $LIVE_HOME.
"""


def build_parser() -> argparse.ArgumentParser:
    from live.cli import (
        avatar_cmd,
        config_cmd,
        directions_cmd,
        doctor_cmd,
        face_cmd,
        gan_cmd,
        models_cmd,
        run_cmd,
        serve_cmd,
    )
    parser = argparse.ArgumentParser(prog="live", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"live {__version__}")
    parser.add_argument("--config", "-c", metavar="FILE", help="YAML config file (see `live config show`)")
    add_arguments(parser, LogConfig, prefix="log__")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (run_cmd, serve_cmd, doctor_cmd, models_cmd, face_cmd, directions_cmd, avatar_cmd, gan_cmd,
                   config_cmd):
        module.register(sub)
    _describe_all(parser)
    return parser


def _describe_all(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its one-line help, so `--help` always explains it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description:
                    sub.description = (helps.get(name) or "").capitalize() + "."
                _describe_all(sub)


def load_cli_config(args: argparse.Namespace) -> LiveConfig:
    from live.config_files import load_config
    from live.paths import user_config_file
    user = user_config_file()
    return load_config(user if user.is_file() else None, args.config, overrides=config_overrides(args))


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message tells the user what to do: printed as one line, exit status 2."""
    from calibration import CalibrationError, ProfileError
    from live.engines.devices import BackendUnavailable
    from live.io.sinks import SinkError
    from live.io.sources import SourceError
    from live.model_store import ModelStoreError
    from live.options import ConfigError
    from models.download import DownloadError
    from models.errors import WeightsError
    from models.registry import RegistryError
    return (WeightsError, ConfigError, BackendUnavailable, SinkError, SourceError, CalibrationError, ProfileError,
            DownloadError, RegistryError, ModelStoreError, ValueError, OSError)


def main(argv: list[str] | None = None) -> int:
    from live.log import setup_logging
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    setup_logging("DEBUG" if args.log__verbose else (args.log__level or "INFO"))
    from live.paths import clean_stale_partials_in_user_dirs
    for leftover in clean_stale_partials_in_user_dirs():
        logger.debug("removed {}, left by a writer that was stopped mid-write", leftover)
    try:
        cfg = load_cli_config(args)
        setup_logging("DEBUG" if cfg.log.verbose else cfg.log.level, cfg.log.file)
        return args.func(args, cfg)
    except user_errors() as e:
        logger.error("{}", e)
        return 2


def entry() -> None:
    """The `live` command: native libraries' chatter filtered out of stderr (unless -v), then main."""
    from live.log import quiet_native_logs
    if not {"-v", "--verbose"} & set(sys.argv[1:]):
        quiet_native_logs()
    sys.exit(main())


if __name__ == "__main__":
    entry()
