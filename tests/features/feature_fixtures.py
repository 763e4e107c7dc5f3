"""Helpers of the feature tests: tiny `clips` rows written the way ingestion writes them, sidecar JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from dualforce_core.data.lance_store import upsert
from dualforce_core.data.media import encode_audio, encode_video
from dualforce_core.data.tables import CLIPS
from dualforce_core.timeline import FPS, SAMPLE_RATE

FEATURE_WEIGHTS = ("wan_vae", "hubert", "liveportrait_motion", "flame_regressor")

MakeClips = Callable[..., list[str]]


def clip_frames(num_frames: int, size: int, seed: int) -> np.ndarray:
    """A moving bright square on a noisy background: something codecs and networks can chew on."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        x = (t * 2) % (size // 2)
        frames[t, size // 4 : size // 2, x : x + size // 4] = (220, 180, 150)
    return frames


def write_sidecar(path: Path, num_source_frames: int, fps: float = FPS) -> np.ndarray:
    """The synthetic dataset's sidecar layout; returns its `flame` array (frame i's values start at i)."""
    flame = np.arange(num_source_frames, dtype=np.float32)[:, None] + np.linspace(
        0, 0.5, 53, dtype=np.float32
    )
    zeros = [0.0] * num_source_frames
    record = {
        "fps": fps,
        "num_frames": num_source_frames,
        "mouth_open": zeros,
        "yaw": zeros,
        "pitch": zeros,
        "roll": zeros,
        "blink": zeros,
        "flame": flame.tolist(),
    }
    path.write_text(json.dumps(record))
    return flame


def clip_writer(tmp_path: Path) -> MakeClips:
    """`make(dataset, count, ...)` writes clips into `clips` (schema `CLIPS.schema`) and returns their ids."""

    def make(
        dataset: str,
        count: int,
        num_frames: int = 5,
        size: int = 32,
        first: int = 0,
        sidecar: Path | None = None,
    ) -> list[str]:
        rows = []
        for i in range(first, first + count):
            start = i * num_frames
            t = np.arange(num_frames * SAMPLE_RATE // FPS) / SAMPLE_RATE
            rows.append(
                {
                    "clip_id": f"{dataset}-{i:03d}",
                    "dataset": dataset,
                    "source_path": str(tmp_path / f"{dataset}.mp4"),
                    "source_hash": "0" * 64,
                    "start_frame": start,
                    "num_frames": num_frames,
                    "start_s": start / FPS,
                    "end_s": (start + num_frames) / FPS,
                    "fps": FPS,
                    "height": size,
                    "width": size,
                    "video": encode_video(clip_frames(num_frames, size, seed=i), FPS),
                    "audio": encode_audio(0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t), SAMPLE_RATE),
                    "audio_sample_rate": SAMPLE_RATE,
                    "face_box": [0.0, 0.0, float(size), float(size)],
                    "sidecar_path": None if sidecar is None else str(sidecar),
                    "ingested_at": datetime.now(UTC),
                }
            )
        upsert(CLIPS.name, pa.Table.from_pylist(rows, schema=CLIPS.schema))
        return [str(r["clip_id"]) for r in rows]

    return make
