"""Each ground-truth parameter visibly changes the drawn face in the direction the sidecar claims."""

from __future__ import annotations

import numpy as np

from dualforce_core.sample_data import make_identity
from dualforce_core.sample_data.face import FaceRenderer

SIZE = 256
FLAT = np.full((SIZE, SIZE, 3), 128, np.uint8)  # a grey background makes the face pixels easy to find


def _render(**pose: float) -> np.ndarray:
    params = {"mouth_open": 0.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0, "blink": 0.0, **pose}
    return FaceRenderer(make_identity(0, 0), SIZE, outfit=(128, 128, 128)).render(FLAT, **params)


def _face_pixels(frame: np.ndarray) -> np.ndarray:
    return np.abs(frame.astype(int) - 128).sum(axis=2) > 30


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _dark(frame: np.ndarray) -> int:
    return int((frame.max(axis=2) < 90).sum())


def _white(frame: np.ndarray) -> int:
    return int((frame.min(axis=2) > 215).sum())


def test_open_mouth_shows_the_mouth_cavity() -> None:
    assert _dark(_render(mouth_open=1.0)) > _dark(_render(mouth_open=0.0)) + 150


def test_blink_hides_the_whites_of_the_eyes() -> None:
    open_eyes, shut_eyes = _white(_render(blink=0.0)), _white(_render(blink=1.0))
    assert open_eyes > 20 and shut_eyes < open_eyes // 4


def test_head_pose_moves_and_turns_the_face() -> None:
    neutral = _centroid(_face_pixels(_render()))
    assert _centroid(_face_pixels(_render(yaw=15.0)))[0] > neutral[0] + 1.0
    assert _centroid(_face_pixels(_render(yaw=-15.0)))[0] < neutral[0] - 1.0
    assert _centroid(_face_pixels(_render(pitch=10.0)))[1] < neutral[1] - 0.5
    tilted = _render(roll=10.0)
    assert not np.array_equal(tilted, _render())
    assert _face_pixels(tilted).sum() > 0.8 * _face_pixels(_render()).sum()


def test_identities_differ_in_shape_and_colour() -> None:
    first = FaceRenderer(make_identity(0, 0), SIZE, outfit=(128, 128, 128)).render(
        FLAT, 0.0, 0.0, 0.0, 0.0, 0.0
    )
    second = FaceRenderer(make_identity(0, 1), SIZE, outfit=(128, 128, 128)).render(
        FLAT, 0.0, 0.0, 0.0, 0.0, 0.0
    )
    changed = np.abs(first.astype(int) - second.astype(int)).sum(axis=2) > 30
    assert changed.mean() > 0.1
