"""`dualforce config`: print the fully resolved configuration (defaults + file + overrides)."""

from __future__ import annotations

import argparse

from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.config import dump_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config", help="print the resolved config (defaults, then --config, then overrides)"
    )
    add_config_args(parser)
    parser.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    print(dump_config(config_from_args(args)), end="")
    return 0
