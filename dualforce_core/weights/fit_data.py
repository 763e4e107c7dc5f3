"""The ingested clips a stand-in is fitted on (train identities) or measured on (held-out identities)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.media import decode_video
from dualforce_core.data.split import dataset_clips, select_split
from dualforce_core.errors import UserError
from dualforce_core.evaluation.config import EvalConfig
from dualforce_core.features.struct_sidecar import sidecar_tracks


@dataclass(frozen=True)
class FitClip:
    clip_id: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    mouth_open: np.ndarray | None  # [T] ground truth from the sidecar; None for real videos


def split_clips(dataset: str, split: str, limit: int) -> list[FitClip]:
    """Up to `limit` decoded clips of `dataset`'s identity split (`train` or `test`), in clip-id order."""
    config = EvalConfig()
    clips = dataset_clips(dataset, config)  # a clear error for a missing or empty dataset
    if len({c.identity for c in clips}) < 2:
        raise UserError(
            f"dataset {dataset!r} shows one identity: a fit needs held-out identities to measure itself on"
        )
    chosen = sorted(c.clip_id for c in select_split(clips, split, config.test_fraction))[:limit]
    where = f"dataset = '{dataset}'"
    rows = {
        r["clip_id"]: r
        for r in read_rows(
            "clips", ["clip_id", "video", "sidecar_path", "start_frame", "num_frames"], where
        ).to_pylist()
        if r["clip_id"] in set(chosen)
    }
    out = []
    for clip_id in chosen:
        row = rows[clip_id]
        mouth = None
        if row["sidecar_path"] and Path(row["sidecar_path"]).is_file():
            mouth = sidecar_tracks(Path(row["sidecar_path"]), row["start_frame"], row["num_frames"])[
                "mouth_open"
            ]
        out.append(FitClip(clip_id, decode_video(row["video"]), mouth))
    return out
