"""Time each evaluation metric per clip on synthetic clips (random stand-in networks unless --weights).

    python bench/metrics.py --clips 2 --frames 32 --size 128

Reports seconds per clip for the feature extraction behind FID (every frame), FVD (16-frame clips),
Sync (SyncNet distances, offsets ±K) and CSIM/ACD (ArcFace), plus one 2048-d Fréchet distance.
Stand-in networks are small except SyncNet, which is full size, so only the Sync and Fréchet numbers
say anything about real cost; the output says which networks were stand-ins.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dualforce_core.metrics import (
    MetricNetworks,
    acd,
    csim,
    face_crops,
    feature_statistics,
    frechet_distance,
    i3d_features,
    identity_embeddings,
    inception_features,
    sync_scores,
    syncnet_distances,
    video_clips,
)
from dualforce_core.weights.registry import WeightsRegistry, init_random


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=2, help="synthetic clips to time (default 2)")
    parser.add_argument("--frames", type=int, default=32, help="frames per clip at 25 fps (default 32)")
    parser.add_argument(
        "--size", type=int, default=128, help="frame height and width in pixels (default 128)"
    )
    parser.add_argument("--max-offset", type=int, default=15, help="Sync offsets ±K (default 15)")
    parser.add_argument(
        "--weights", type=Path, help="weights root with real networks (default: random stand-ins)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    return parser.parse_args()


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def sync_clip(nets: MetricNetworks, video: np.ndarray, audio: np.ndarray, max_offset: int) -> Any:
    return sync_scores(syncnet_distances(nets.syncnet, face_crops(video, 224), audio, max_offset=max_offset))


def identity_clip(nets: MetricNetworks, video: np.ndarray) -> float:
    faces = face_crops(video, 112)
    embeddings = identity_embeddings(nets.arcface, faces)
    csim(nets.arcface, faces, faces[0])
    return acd(embeddings, embeddings[::-1])


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.weights
        if root is None:
            root = Path(scratch)
            init_random(root, ["inception", "i3d", "syncnet", "arcface"])
        load_s, nets = timed(MetricNetworks.from_registry, WeightsRegistry(root))
    stand_ins = sorted(name for name, entry in nets.weights.items() if entry["stand_in"])
    print(f"networks loaded in {load_s:.2f} s; random stand-ins: {', '.join(stand_ins) or 'none'}")
    print(
        f"{args.clips} clips × {args.frames} frames of {args.size}×{args.size}, torch threads {args.threads}"
    )

    rng = np.random.default_rng(0)
    totals: dict[str, float] = {"FID features": 0.0, "FVD features": 0.0, "Sync": 0.0, "CSIM+ACD": 0.0}
    for _ in range(args.clips):
        video = rng.integers(0, 256, (args.frames, args.size, args.size, 3), dtype=np.uint8)
        audio = rng.normal(0, 0.1, args.frames * 640).astype(np.float32)
        totals["FID features"] += timed(inception_features, nets.inception, video)[0]
        clips = video_clips(video)
        if clips.shape[0]:
            totals["FVD features"] += timed(i3d_features, nets.i3d, clips)[0]
        totals["Sync"] += timed(sync_clip, nets, video, audio, args.max_offset)[0]
        totals["CSIM+ACD"] += timed(identity_clip, nets, video)[0]
    for name, seconds in totals.items():
        print(f"{name:<14} {seconds / args.clips:8.3f} s/clip")

    mu, sigma = feature_statistics(rng.normal(size=(4096, 2048)))
    fd_s, _ = timed(frechet_distance, mu, sigma, mu + 0.1, sigma * 1.1)
    print(f"Fréchet distance, 2048-d: {fd_s:.3f} s (once per evaluation)")


if __name__ == "__main__":
    main()
