"""`dualforce demo`: prepare the demo's inputs (synthetic dataset + stand-in weights) under $DUALFORCE_HOME.

The pipeline itself is Dagster's: `make demo` (which runs `python -m pipelines.demo`) prepares the same
inputs and then materialises the whole asset graph.
"""

from __future__ import annotations

import argparse

from dualforce_core import paths
from dualforce_core.demo_inputs import describe, prepare_demo_inputs


def add_demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clips", type=int, default=96, help="synthetic videos to generate (first run only; default 96)"
    )
    parser.add_argument(
        "--identities", type=int, help="distinct synthetic people (default: clips / 2, so 48 by default)"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each synthetic video")
    parser.add_argument(
        "--size", type=int, default=64, help="synthetic video resolution (64: what the fitted VAE knows)"
    )
    parser.add_argument("--seed", type=int, default=0)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="prepare the demo: synthetic dataset + stand-in weights under $DUALFORCE_HOME",
        description="Writes raw/sample/ and weights/ under $DUALFORCE_HOME when missing. `make demo` does "
        "this and then runs the whole Dagster pipeline on it.",
    )
    add_demo_args(parser)
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    print(f"DualForce demo inputs — data root {paths.home()}")
    print(describe(prepare_demo_inputs(args.clips, args.seconds, args.size, args.seed, args.identities)))
    print("next: `make demo` (python -m pipelines.demo) runs the pipeline on them")
    return 0
