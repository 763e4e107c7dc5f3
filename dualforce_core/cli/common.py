"""Arguments every subcommand shares: `--config FILE` and `key.sub=value` overrides."""

from __future__ import annotations

import argparse

from dualforce_core.config import DualForceConfig, load_config


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config (see configs/); defaults apply without it"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted config overrides, e.g. model.preset=small train.lr=3e-4",
    )


def config_from_args(args: argparse.Namespace) -> DualForceConfig:
    return load_config(args.config, args.overrides)
