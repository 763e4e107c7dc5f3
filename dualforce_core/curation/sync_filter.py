"""SyncNet filter of curated clips (`data.crop_mode=track`): LatentSync's rule on syncnet_python's scores.

LatentSync (`preprocess/sync_av.py`) keeps a training video when SyncNet's confidence is at least 3 and its
|audio-video offset| at most 6 frames, and delays its audio by that offset (`ffmpeg -itsoffset offset/fps`).
Here the unit is a curated clip (one face track between rejects), scored the way
`SyncNetInstance.evaluate` scores a track: the distance matrices [2K+1, windows] of the clip's fixed
windows (`metrics.syncnet.syncnet_distances`, each window against its own audio) are concatenated along
the window axis, and `metrics.sync.sync_scores` turns them into the clip's offset, Sync-C and Sync-D. Two
differences from one syncnet_python call on the whole clip: the audio is zero-padded at each window's edges
rather than only at the clip's, and frames that overlapping windows share (clip_stride < clip_frames) count
once per window. Only the distances are kept, never the crops, so memory does not grow with a track.

SyncNet's input is cut from each frame of the window's aligned crop, on that frame's stored landmarks, by
`align_crop` at 224 px framed by `SyncFilterConfig.align`: the crop of `eval.sync_crop=aligned`.

Offset sign (syncnet_python's, `syncnet_distances`): o > 0 means the lips move o frames after the sound, so
the audio that belongs with video frame s starts at source frame s − o (`ClipSync.audio_start`).

This module loads torch (SyncNet); ingestion imports it only in a process that runs the filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dualforce_core.curation.align import align_crop
from dualforce_core.curation.config import AlignConfig, SyncFilterConfig
from dualforce_core.metrics.sync import sync_scores
from dualforce_core.metrics.syncnet import CROP_SIZE, SyncNet, load_syncnet, syncnet_distances

REASONS = ("low_sync", "av_offset")
"""The `rejects.reason` of every window of a clip the filter refuses (value: the confidence, the offset)."""


@dataclass(frozen=True)
class ClipSync:
    """SyncNet's verdict on one curated clip."""

    offset: int
    """Frames the lips lag the sound (syncnet_python's sign)."""
    confidence: float
    """Sync-C (LSE-C): median − min of the mean distance over offsets; higher is better."""
    distance: float
    """Sync-D (LSE-D): the min mean distance; lower is better."""
    windows: int
    """5-frame SyncNet windows scored."""
    reason: str = ""
    """'' when kept, else one of `REASONS`."""
    detail: str = ""

    @property
    def value(self) -> float:
        """The measured value behind `reason` (the `rejects.value` column)."""
        return float(self.offset) if self.reason == "av_offset" else self.confidence

    def audio_start(self, start: int) -> int:
        """The source frame where the audio of the window starting at video frame `start` begins once the
        offset is corrected."""
        return start - self.offset


def judge(distances: Sequence[np.ndarray], config: SyncFilterConfig) -> ClipSync:
    """The verdict on one clip from its windows' distances [2K+1, n_i], concatenated along the windows.
    A low confidence is the first reason: the offset of a clip SyncNet cannot read means nothing."""
    scores = sync_scores(np.concatenate(distances, axis=1))
    verdict = ClipSync(scores.offset, scores.sync_c, scores.sync_d, sum(d.shape[1] for d in distances))
    if scores.sync_c < config.min_confidence:
        return replace(
            verdict,
            reason="low_sync",
            detail=f"SyncNet confidence {scores.sync_c:.2f} of the clip is below "
            f"data.curation.sync.min_confidence={config.min_confidence}",
        )
    if abs(scores.offset) > config.max_offset:
        return replace(
            verdict,
            reason="av_offset",
            detail=f"audio-video offset {scores.offset:+d} frames of the clip exceeds "
            f"data.curation.sync.max_offset={config.max_offset}",
        )
    return verdict


def syncnet_crops(crops: np.ndarray, landmarks: np.ndarray, align: AlignConfig) -> np.ndarray:
    """uint8 [T, 224, 224, 3]: `align_crop` of every aligned-crop frame [T, S, S, 3] on its landmarks
    [T, 68, 2] (in that crop's pixels)."""
    return np.stack(
        [align_crop(frame, points, CROP_SIZE, align)[0] for frame, points in zip(crops, landmarks)]
    )


class SyncFilter:
    """SyncNet, loaded once per process, and the filter's settings."""

    def __init__(self, net: SyncNet, config: SyncFilterConfig) -> None:
        self.net = net
        self.config = config

    @classmethod
    def load(cls, path: Path, config: SyncFilterConfig) -> SyncFilter:
        return cls(load_syncnet(path), config)

    def distances(self, crops: np.ndarray, landmarks: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """[2K+1, T − 5] of one window: its aligned crops, their landmarks and its (unshifted) audio."""
        faces = syncnet_crops(crops, landmarks, self.config.align)
        return syncnet_distances(self.net, faces, audio, self.config.search_offset)

    def judge(self, distances: Sequence[np.ndarray]) -> ClipSync:
        return judge(distances, self.config)
