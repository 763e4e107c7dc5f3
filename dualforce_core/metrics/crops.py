"""Square face crops for the metric networks: 224×224 for SyncNet, 112×112 for ArcFace.

Deliberately simple, and the same for real and generated videos so no method is favoured: one square
per clip, centred on the clip's face box (the `clips` table stores one) or on the frame centre when
there is none, as large as the box's longer side (the whole short side of the frame without a box),
moved inside the frame, then resized (area filter when shrinking). SyncNet's own pipeline tracks the
face with S3FD per frame and enlarges the box by 40%; ArcFace's expects five-point alignment. Neither
detector is used here: our clips are already face-centred portraits.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from dualforce_core.errors import UserError


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


def face_crops(frames: Any, size: int, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """uint8 RGB crops [T, size, size, 3] of uint8 RGB frames [T, H, W, 3] (one square for the clip)."""
    video = np.asarray(frames)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] == 0:
        raise UserError(f"frames must be uint8 RGB [T, H, W, 3], got {video.dtype} {video.shape}")
    top, left, side = crop_square(video.shape[1], video.shape[2], box)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    squares = video[:, top : top + side, left : left + side]
    return np.stack([cv2.resize(square, (size, size), interpolation=interpolation) for square in squares])
