"""`dualforce demo`: the bundled end-to-end run on the synthetic dataset (what `make demo` calls)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dualforce_core import paths
from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import init_random
from dualforce_core.weights.registry import STAND_IN_MARKER

SAMPLE_DATASET = "sample"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the demo pipeline: synthetic dataset + random stand-in weights under $DUALFORCE_HOME",
    )
    parser.add_argument("--clips", type=int, default=12, help="synthetic clips to generate (first run only)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each synthetic clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    home = paths.home()
    print(f"DualForce demo — data root {home}")
    raw = paths.raw_dir() / SAMPLE_DATASET
    if not any(raw.glob("videos/*.mp4")):
        written = generate_dataset(raw, clips=args.clips, seed=args.seed, seconds=args.seconds)
        print(f"generated {len(written)} synthetic talking-face clips in {raw}")
    else:
        print(f"synthetic dataset already present in {raw}")
    _describe_dataset(raw)

    weights = paths.weights_dir()
    if not (weights / STAND_IN_MARKER).is_file():
        names = init_random(weights, seed=args.seed)
        print(f"wrote RANDOM stand-in weights to {weights}: {', '.join(names) or 'none yet'}")
    print("NOTE: all networks in the demo are random stand-ins; nothing it produces is a real result.")
    return 0


def _describe_dataset(root: Path) -> None:
    videos = sorted(root.glob("videos/*.mp4"))
    size_mb = sum(v.stat().st_size for v in videos) / 1e6
    print(f"  {len(videos)} mp4 files ({size_mb:.1f} MB), sidecars: {len(list(root.glob('videos/*.json')))}")
    print(f"  metadata: {root / 'metadata.json'}")
