"""`dualforce weights`: inspect the weights registry and write random stand-ins."""

from __future__ import annotations

import argparse

from dualforce_core import paths
from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.weights import COMPONENTS, MissingWeightsError, WeightsRegistry, init_random


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="pretrained weights: list them or write random stand-ins")
    sub = parser.add_subparsers(dest="weights_command", required=True)

    init = sub.add_parser(
        "init-random",
        help="write small RANDOM stand-ins of every network in the real formats (tests and the demo only)",
    )
    init.add_argument("--out", help="folder to write (default: $DUALFORCE_WEIGHTS)")
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(func=_init_random)

    status = sub.add_parser("list", help="show where each component is looked for and whether it is there")
    add_config_args(status)
    status.set_defaults(func=_list)


def _init_random(args: argparse.Namespace) -> int:
    out = args.out or str(paths.weights_dir())
    written = init_random(out, seed=args.seed)
    print(f"wrote RANDOM stand-ins to {out}: {', '.join(written) or 'none'}")
    print("these are random networks: nothing they produce is a real result")
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = WeightsRegistry.from_config(config_from_args(args).weights)
    for name in COMPONENTS:
        try:
            registry.path(name)
            state = "random stand-in" if registry.is_stand_in(name) else "present"
        except MissingWeightsError:
            state = "MISSING"
        print(f"{name:20s} {state:16s} {registry.location(name)}")
    return 0
