"""The `dualforce` command: one entry point, one subcommand per stage.

Each subcommand lives in its own module exposing `register(subparsers)`; its handler returns an exit
code. A `UserError` (bad config, missing weights, bad input) prints one clear message, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dualforce_core.errors import UserError

COMMAND_MODULES = (
    "dualforce_core.cli.sample_data_cmd",
    "dualforce_core.cli.weights_cmd",
    "dualforce_core.cli.config_cmd",
    "dualforce_core.cli.ingest_cmd",
    "dualforce_core.cli.demo_cmd",
    "dualforce_core.cli.train_cmd",
    "dualforce_core.cli.extract_cmd",
    "dualforce_core.cli.evaluate_cmd",
    "dualforce_core.cli.generate_cmd",
    "dualforce_core.cli.lora_cmd",
    "dualforce_core.cli.serve_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dualforce",
        description="DualForce: streaming audio-driven talking-head video. Data root: $DUALFORCE_HOME "
        "(default ./.dualforce); pretrained weights: $DUALFORCE_WEIGHTS (default $DUALFORCE_HOME/weights).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"dualforce {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dualforce {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
