"""A contact sheet of a dataset's clips: the quickest way to see what ingestion cut and cropped."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dualforce_core.data.lance_store import read_rows, sql_str
from dualforce_core.data.media import decode_video


def contact_sheet(dataset: str, out: Path, clips: int = 4, frames: int = 4, thumb: int = 96) -> Path | None:
    """A PNG grid, one row per clip (the first `clips` by id) and `frames` evenly spaced frames per row;
    None when the dataset has no clips."""
    rows = read_rows("clips", ["clip_id", "video"], f"dataset = {sql_str(dataset)}").to_pylist()
    rows = sorted(rows, key=lambda row: row["clip_id"])[:clips]
    if not rows:
        return None
    grid = []
    for row in rows:
        video = decode_video(row["video"])
        picks = np.linspace(0, len(video) - 1, frames).round().astype(int)
        grid.append(np.concatenate([cv2.resize(video[i], (thumb, thumb)) for i in picks], axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(grid, axis=0), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {out}")
    return out
