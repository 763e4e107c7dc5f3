"""The one aligned face crop: training clips, the inference portrait and SyncNet evaluation all call
`align_crop`, so the model is trained, driven and judged on faces framed the same way.

The recipe is LivePortrait's (`src/utils/crop.py`: `parse_rect_from_landmark`, `crop_image`), re-derived:

1. Two points fix the face's vertical axis: the eye centre and the mouth centre (`axis="eye_mouth"`,
   upstream's default), or the perpendicular of the line through the eyes (`axis="eye_line"`). The unit
   vector `uy` points down the face, `ux = (uy_y, -uy_x)` across it; the roll angle is the angle of `ux`.
2. The landmarks are expressed in that rotated frame; their bounding box gives the centre and the
   extent, and the extent is squared (the larger of width and height).
3. Crop side = `scale` × extent (upstream 2.3); the centre moves by `vx_ratio`·side along `ux` and
   `vy_ratio`·side along `uy` (upstream −0.125: up, so hair and forehead are in the picture).
4. The affine maps the source frame to a size×size crop: `crop = s·R·(p − centre) + size/2` with
   `s = size / side` and `R` the rows `ux`, `uy` (the identity when `rotate=False`).

Differences from upstream, on purpose: `vx_ratio` is honoured (upstream's `crop_image` drops it; its
default is 0 so nothing changes), large downscales are anti-aliased (the frame is first shrunk with area
averaging, then warped: upstream warps a 512 crop bilinearly and area-resizes it to 256 afterwards), and the
border mode is a setting (upstream: black).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dualforce_core.curation.config import AlignConfig
from dualforce_core.errors import UserError

IBUG68_EYES = ((36, 39), (42, 45))
"""iBUG 68-point scheme (dlib): outer and inner corner of each eye (image-left eye first)."""
IBUG68_MOUTH = (48, 54)
"""iBUG 68-point scheme: the two mouth corners."""
INSIGHTFACE106_EYES = ((33, 35, 40, 39), (87, 89, 94, 93))
INSIGHTFACE106_MOUTH = (52, 61)
BORDERS = {
    "constant": cv2.BORDER_CONSTANT,
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
}
ANTIALIAS_BELOW = 0.5
"""When the crop shrinks the source more than this, the frame is area-shrunk first (no aliasing)."""


@dataclass(frozen=True)
class CropRect:
    """A rotated square in source pixels: its centre, side, roll (radians) and the bare landmark extent."""

    centre: tuple[float, float]
    side: float
    angle: float
    extent: float


def face_points(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre, mouth centre) of a 68- or 106-point landmark set."""
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise UserError(f"landmarks must be [N, 2], got {points.shape}")
    eyes: tuple[tuple[int, ...], tuple[int, ...]]
    mouth: tuple[int, ...]
    if points.shape[0] == 68:
        eyes, mouth = IBUG68_EYES, IBUG68_MOUTH
    elif points.shape[0] == 106:
        eyes, mouth = INSIGHTFACE106_EYES, INSIGHTFACE106_MOUTH
    else:
        raise UserError(
            f"landmarks must be the 68-point (dlib/iBUG) or 106-point (InsightFace) set, got {len(points)}"
        )
    left = points[list(eyes[0])].mean(axis=0)
    right = points[list(eyes[1])].mean(axis=0)
    return left, right, points[list(mouth)].mean(axis=0)


def face_axes(landmarks: np.ndarray, axis: str = "eye_mouth") -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (ux across the face, uy down the face) in image coordinates."""
    left, right, mouth = face_points(landmarks)
    if axis == "eye_mouth":
        down = mouth - (left + right) / 2
    elif axis == "eye_line":
        across = right - left
        down = np.array([-across[1], across[0]])
    else:
        raise UserError(f"align.axis must be eye_mouth or eye_line, got {axis!r}")
    length = float(np.hypot(*down))
    uy = down / length if length > 1e-3 else np.array([0.0, 1.0])
    return np.array([uy[1], -uy[0]]), uy


def crop_rect(landmarks: np.ndarray, config: AlignConfig | None = None) -> CropRect:
    """Where the crop of these landmarks lies in the source frame (steps 1–3 of the module doc)."""
    config = config or AlignConfig()
    points = np.asarray(landmarks, np.float64)
    ux, uy = face_axes(points, config.axis)
    rotation = np.stack([ux, uy])
    mean = points.mean(axis=0)
    local = (points - mean) @ rotation.T
    low, high = local.min(axis=0), local.max(axis=0)
    middle = (low + high) / 2
    extent = float(max(high - low))
    side = extent * config.scale
    centre = mean + ux * (middle[0] + config.vx_ratio * side) + uy * (middle[1] + config.vy_ratio * side)
    return CropRect((float(centre[0]), float(centre[1])), side, math.atan2(ux[1], ux[0]), extent)


def rect_affine(rect: CropRect, size: int, rotate: bool = True) -> np.ndarray:
    """The 2×3 float64 affine taking source pixels to a size×size crop of `rect` (step 4)."""
    if rect.side <= 0:
        raise UserError(f"crop side must be positive, got {rect.side}")
    s = size / rect.side
    cos, sin = (math.cos(rect.angle), math.sin(rect.angle)) if rotate else (1.0, 0.0)
    linear = s * np.array([[cos, sin], [-sin, cos]])
    centre = np.asarray(rect.centre)
    return np.concatenate([linear, (size / 2 - linear @ centre)[:, None]], axis=1)


def crop_affine(landmarks: np.ndarray, size: int, config: AlignConfig | None = None) -> np.ndarray:
    """Source → crop affine [2, 3] for these landmarks."""
    config = config or AlignConfig()
    return rect_affine(crop_rect(landmarks, config), size, config.rotate)


def warp(frame: np.ndarray, affine: np.ndarray, size: int, border: str = "constant") -> np.ndarray:
    """Apply a source → crop affine: bilinear, with an area pre-shrink for large downscales."""
    matrix = np.asarray(affine, np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    source = frame
    if scale < ANTIALIAS_BELOW:
        factor = scale / ANTIALIAS_BELOW
        height, width = frame.shape[:2]
        new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
        source = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
        shrink = np.diag([width / new_w, height / new_h])
        matrix = np.concatenate([matrix[:, :2] @ shrink, matrix[:, 2:]], axis=1)
    return cv2.warpAffine(
        source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border], borderValue=0
    )


def align_crop(
    frame: np.ndarray, landmarks: np.ndarray, size: int, config: AlignConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(size×size crop of `frame`, its source → crop affine [2, 3]) framed on `landmarks` (68 or 106 points).

    The single crop of the project: the landmarks in the crop are `transform_points(landmarks, affine)`,
    and `invert_affine(affine)` pastes the crop back.
    """
    config = config or AlignConfig()
    affine = crop_affine(landmarks, size, config)
    return warp(frame, affine, size, config.border), affine


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """[..., 2] points through a 2×3 affine."""
    matrix = np.asarray(affine, np.float64)
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The inverse 2×3 affine (crop → source)."""
    return np.asarray(cv2.invertAffineTransform(np.asarray(affine, np.float64)), np.float64)


def rescale_affine(affine: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """The same crop at another resolution (what a stored 256 affine becomes for a 224 SyncNet crop)."""
    return np.asarray(affine, np.float64) * (to_size / from_size)
