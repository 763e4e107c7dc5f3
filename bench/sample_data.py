"""How fast `generate_dataset` writes clips (render + H.264/AAC encode + sidecars), end to end.

.venv/bin/python bench/sample_data.py --clips 20 --seconds 5 --size 256
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dualforce_core.sample_data import AUDIO_RATES, generate_dataset
from dualforce_core.timeline import FPS, SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--audio-rate", type=int, default=SAMPLE_RATE, choices=AUDIO_RATES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="keep the clips here (default: a temporary folder, deleted after)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        start = time.perf_counter()
        paths = generate_dataset(
            out,
            clips=args.clips,
            seed=args.seed,
            seconds=args.seconds,
            size=args.size,
            audio_rate=args.audio_rate,
        )
        wall = time.perf_counter() - start
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
    frames = len(paths) * round(args.seconds * FPS)
    print(
        f"clips={len(paths)} seconds={args.seconds:g} size={args.size} audio_rate={args.audio_rate} "
        f"wall_s={wall:.2f} frames={frames} frames_per_s={frames / wall:.0f} "
        f"realtime_x={len(paths) * args.seconds / wall:.1f} mp4_MB={megabytes:.1f}"
    )


if __name__ == "__main__":
    main()
