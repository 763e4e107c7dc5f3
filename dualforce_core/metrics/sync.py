"""Sync-C / Sync-D from SyncNet distances: the scoring rule of joonson/syncnet_python.

`SyncNetInstance.evaluate` averages, for every audio-video offset, the embedding distance over all
5-frame windows of a clip (`mdist`), then reports

    Sync-D (LSE-D)  = min over offsets of mdist                  (lower is better)
    Sync-C (LSE-C)  = median over offsets of mdist − that min    (higher is better)
    offset          = the offset of the minimum, in video frames (25 fps, 40 ms each)

The median is taken over the 2K+1 mean distances, an odd count, where numpy's and torch's medians
agree. Rows of `dists` are ordered by offset −K..+K in syncnet_python's reported sign convention, so
the offset is `argmin − K`; `syncnet.syncnet_distances` builds the matrix in that order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dualforce_core.errors import UserError


class SyncScores(NamedTuple):
    offset: int
    sync_c: float
    sync_d: float


def sync_scores(dists: Any) -> SyncScores:
    """(offset, Sync-C, Sync-D) of one clip from distances [2K+1 offsets, num_windows]."""
    if hasattr(dists, "detach"):
        dists = dists.detach().cpu().numpy()
    matrix = np.asarray(dists, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] % 2 != 1 or matrix.shape[1] < 1:
        raise UserError(f"sync distances must be [2K+1 offsets, num_windows ≥ 1], got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise UserError("sync distances contain NaN or Inf")
    mean = matrix.mean(axis=1)
    best = int(np.argmin(mean))
    minimum = float(mean[best])
    return SyncScores(best - matrix.shape[0] // 2, float(np.median(mean)) - minimum, minimum)
