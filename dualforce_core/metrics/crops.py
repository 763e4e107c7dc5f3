"""Square face crops for the metric networks: 224×224 for SyncNet, 112×112 for ArcFace.

`face_crops` (the default everywhere, `eval.sync_crop=box`): deliberately simple, and the same for real
and generated videos so no method is favoured: one square per clip, centred on the clip's face box (the
`clips` table stores one) or on the frame centre when there is none, as large as the box's longer side
(the whole short side of the frame without a box), moved inside the frame, then resized (area filter when
shrinking). SyncNet's own pipeline tracks the face with S3FD per frame and enlarges the box by 40%;
ArcFace's expects five-point alignment.

`aligned_face_crops` (`eval.sync_crop=aligned`): every frame cut by `curation.align_crop`, the one crop
of training clips and the inference portrait, on dlib's 68 landmarks of that frame, with SyncNet's own
`AlignConfig` (tighter than LivePortrait's 2.3). Frames where no face is found borrow the landmarks of the
nearest frame with one; the landmark track can be smoothed over time first (`eval.sync_smoothing`, default
none: smoothing stops the crop following camera shake, docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from dualforce_core.curation.align import align_crop
from dualforce_core.curation.config import AlignConfig, SmoothingConfig
from dualforce_core.curation.smoothing import smooth_landmarks
from dualforce_core.errors import UserError
from dualforce_core.timeline import FPS

LandmarkFinder = Callable[[np.ndarray], np.ndarray | None]
"""uint8 RGB frame [H, W, 3] → the largest face's 68 landmarks [68, 2] (source pixels), or None."""


def crop_square(
    height: int, width: int, box: tuple[float, float, float, float] | None
) -> tuple[int, int, int]:
    """(top, left, side) of the crop square inside a height×width frame for an (x0, y0, x1, y1) box."""
    if box is None:
        side = min(height, width)
        centre_x, centre_y = width / 2, height / 2
    else:
        x0, y0, x1, y1 = box
        if not (x1 > x0 and y1 > y0):
            raise UserError(f"face box {box} is empty; expected (x0, y0, x1, y1) with x1 > x0 and y1 > y0")
        side = min(round(max(x1 - x0, y1 - y0)), height, width)
        centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    top = int(np.clip(round(centre_y - side / 2), 0, height - side))
    left = int(np.clip(round(centre_x - side / 2), 0, width - side))
    return top, left, int(side)


def _video(frames: Any) -> np.ndarray:
    video = np.asarray(frames)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] == 0:
        raise UserError(f"frames must be uint8 RGB [T, H, W, 3], got {video.dtype} {video.shape}")
    return video


def face_crops(frames: Any, size: int, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """uint8 RGB crops [T, size, size, 3] of uint8 RGB frames [T, H, W, 3] (one square for the clip)."""
    video = _video(frames)
    top, left, side = crop_square(video.shape[1], video.shape[2], box)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    squares = video[:, top : top + side, left : left + side]
    return np.stack([cv2.resize(square, (size, size), interpolation=interpolation) for square in squares])


@dataclass(frozen=True)
class AlignedCrops:
    """`aligned_face_crops` of one video: the crops and exactly what they were cut with."""

    crops: np.ndarray  # uint8 [T, size, size, 3]
    affines: np.ndarray  # float64 [T, 2, 3], source → crop (`align_crop`'s)
    landmarks: np.ndarray  # float64 [T, 68, 2] source px: found, gaps filled, smoothed (the crops' input)
    found: np.ndarray  # bool [T]: the detector found a face in that frame

    @property
    def rate(self) -> float:
        return float(self.found.mean())


def fill_gaps(landmarks: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Each frame without a face takes the landmarks of the nearest frame with one (the earlier on a tie)."""
    indices = np.flatnonzero(found)
    if len(indices) == 0:
        raise UserError("no frame has a face: nothing to fill the gaps from")
    frames = np.arange(len(found))
    position = np.clip(np.searchsorted(indices, frames), 1, max(len(indices) - 1, 1))
    before, after = indices[position - 1], indices[np.minimum(position, len(indices) - 1)]
    nearest = np.where(np.abs(after - frames) < np.abs(frames - before), after, before)
    return np.asarray(landmarks, np.float64)[nearest]


def aligned_face_crops(
    frames: Any,
    size: int,
    align: AlignConfig,
    find: LandmarkFinder,
    smoothing: SmoothingConfig | None = None,
    fps: float = FPS,
) -> AlignedCrops | None:
    """`align_crop` of every frame on its own 68 landmarks (`find`); None when no frame has a face.

    Gaps are filled from the nearest face (`fill_gaps`), then the track is smoothed over time
    (`smoothing`, default: none), then every frame is `align_crop(frame, landmarks[t], size, align)`.
    """
    video = _video(frames)
    count = video.shape[0]
    landmarks = np.zeros((count, 68, 2))
    found = np.zeros(count, dtype=bool)
    for index, frame in enumerate(video):
        points = find(frame)
        if points is not None:
            landmarks[index], found[index] = points, True
    if not found.any():
        return None
    track = fill_gaps(landmarks, found)
    if smoothing is not None:
        extents = track.max(axis=1) - track.min(axis=1)
        track = smooth_landmarks(track, smoothing, fps, float(np.median(extents.max(axis=1))))
    crops = np.empty((count, size, size, 3), np.uint8)
    affines = np.empty((count, 2, 3))
    for index, frame in enumerate(video):
        crops[index], affines[index] = align_crop(frame, track[index], size, align)
    return AlignedCrops(crops, affines, track, found)


def sync_crops(
    frames: Any,
    size: int,
    mode: str,
    align: AlignConfig | None = None,
    find: LandmarkFinder | None = None,
    smoothing: SmoothingConfig | None = None,
) -> tuple[np.ndarray, bool]:
    """SyncNet's input crops and whether they are aligned: `box` = `face_crops`, `aligned` =
    `aligned_face_crops` (a video in which the detector finds no face at all falls back to `face_crops`,
    the same rule for real and generated, and says so, so reports can count the fallbacks)."""
    if mode == "box":
        return face_crops(frames, size), False
    if mode != "aligned":
        raise UserError(f"eval.sync_crop must be box or aligned, got {mode!r}")
    if align is None or find is None:
        raise TypeError("sync_crop=aligned needs an AlignConfig and a landmark finder")
    aligned = aligned_face_crops(frames, size, align, find, smoothing)
    return (face_crops(frames, size), False) if aligned is None else (aligned.crops, True)
