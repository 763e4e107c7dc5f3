"""Feature-extraction throughput per extractor, with the random stand-in networks, on synthetic clips.

    python bench/extract.py --clips 4 --seconds 2 data.size=64
    python bench/extract.py --kinds struct latents --device cuda data.size=256

Generates a synthetic dataset (`dualforce_core.sample_data`), ingests it into a temporary data root,
writes the stand-ins (`weights init-random`: tiny HuBERT, tiny Wan VAE, FULL-size LivePortrait motion
extractor, tiny ONNX FLAME regressor), then times each extractor over all clips and a second,
resumed run that must find nothing to do. Reports clips/s and video frames/s. Stand-in numbers measure
the pipeline and, for LivePortrait, the real network's cost; HuBERT and the VAE are far smaller than
the real ones, so their numbers are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dualforce_core.config import DualForceConfig, load_config
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.data.lance_store import read_rows
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.flame import extract_flame_params
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.stage import ExtractReport
from dualforce_core.features.struct import extract_struct_features
from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import init_random

DATASET = "bench"
WEIGHTS = ("wan_vae", "hubert", "liveportrait_motion", "flame_regressor")


def _runners(device: str) -> dict[str, Callable[[DualForceConfig], ExtractReport | None]]:
    return {
        "audio": lambda c: extract_audio_features(DATASET, c, device, progress=False),
        "struct": lambda c: extract_struct_features(DATASET, c, device, progress=False),
        "flame": lambda c: extract_flame_params(DATASET, c, device, progress=False),
        "latents": lambda c: extract_video_latents(DATASET, c, device, progress=False),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=4, help="synthetic source videos to generate")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each source video")
    parser.add_argument("--source-size", type=int, default=128, help="side of the synthetic source videos")
    parser.add_argument("--kinds", nargs="+", default=["audio", "struct", "flame", "latents"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. data.size=64"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    runners = _runners(args.device)
    unknown = set(args.kinds) - set(runners)
    if unknown:
        raise SystemExit(f"unknown --kinds {sorted(unknown)}; choose from {', '.join(runners)}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DUALFORCE_HOME"] = str(Path(tmp) / "home")
        init_random(Path(tmp) / "weights", WEIGHTS)
        config = load_config(None, [f"weights.root={Path(tmp) / 'weights'}", *args.overrides])
        generate_dataset(Path(tmp) / "raw", clips=args.clips, seconds=args.seconds, size=args.source_size)
        ingest_dataset(DATASET, Path(tmp) / "raw", config.data, progress=False)
        frames = sum(read_rows("clips", ["num_frames"])["num_frames"].to_pylist())
        clips = read_rows("clips", ["clip_id"]).num_rows
        print(
            f"{clips} clips, {frames} frames at {config.data.size}px, batch {config.data.feature_batch_size}, "
            f"device {args.device}; RANDOM STAND-IN networks (LivePortrait at full size)"
        )
        print(
            f"{'extractor':10s} {'written':>7s} {'seconds':>8s} {'clips/s':>8s} {'frames/s':>9s} {'resume s':>9s}"
        )
        for kind in args.kinds:
            start = time.perf_counter()
            report = runners[kind](config)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            again = runners[kind](config)
            resume = time.perf_counter() - start
            if report is None or again is None:
                print(f"{kind:10s} disabled by data.flame_extractor=none")
                continue
            assert again.written == 0, f"{kind}: the resumed run wrote {again.written} rows"
            print(
                f"{kind:10s} {report.written:7d} {seconds:8.2f} {clips / seconds:8.2f} "
                f"{frames / seconds:9.1f} {resume:9.2f}"
            )


if __name__ == "__main__":
    main()
