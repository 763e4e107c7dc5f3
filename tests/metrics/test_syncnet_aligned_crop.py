"""`eval.sync_crop=aligned`: SyncNet's input is `curation.align_crop` of every frame on dlib's landmarks.

Real photographs (Debian's opencv-doc) and dlib's real networks; the talking clip is a real photo whose jaw
opens with real espeak-ng speech (`tests.metrics.real_faces`). Measured here: under ±3 px of camera shake
the aligned crop keeps the eye centres and the mouth within 1.45 px of their place (0.59 px mean, 224-px
crop), where the one-square-per-clip crop moves with the shake (2.14 px mean, 3.65 max).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dualforce_core.curation import AlignConfig, align_crop, transform_points
from dualforce_core.curation.align import face_points
from dualforce_core.curation.config import SmoothingConfig
from dualforce_core.curation.smoothing import smooth_landmarks
from dualforce_core.evaluation import scoring
from dualforce_core.evaluation.config import SYNC_ALIGN, EvalConfig
from dualforce_core.evaluation.scoring import MetricAccumulator
from dualforce_core.metrics.crops import aligned_face_crops, face_crops, fill_gaps, sync_crops
from dualforce_core.metrics.syncnet import CROP_SIZE
from dualforce_core.timeline import SAMPLES_PER_FRAME
from tests.metrics.real_faces import dlib_faces, face_square, jitter, loudness, photo, speech, talking_clip

FRAMES = 12


def find(frame: np.ndarray) -> np.ndarray | None:
    face = dlib_faces().find(frame)
    return None if face is None else face.landmarks


@pytest.fixture(scope="module")
def talking() -> tuple[np.ndarray, np.ndarray]:
    """A real face saying the first 12 frames of a sentence: frames [12, 256, 256, 3], audio."""
    audio = speech()[: FRAMES * SAMPLES_PER_FRAME]
    return talking_clip(face_square(photo("bearded_man")), loudness(audio, FRAMES)), audio


def test_the_eval_default_is_still_the_box_crop() -> None:
    config = EvalConfig()
    assert config.sync_crop == "box" and config.sync_align == SYNC_ALIGN
    assert config.sync_align.scale < AlignConfig().scale  # tighter than LivePortrait's 2.3
    assert config.sync_smoothing.method == "none"


def test_aligned_crops_are_align_crop_of_each_frames_landmarks(
    talking: tuple[np.ndarray, np.ndarray],
) -> None:
    frames, _ = talking
    got = aligned_face_crops(frames, CROP_SIZE, SYNC_ALIGN, find)
    assert got is not None and got.found.all() and got.crops.shape == (FRAMES, CROP_SIZE, CROP_SIZE, 3)
    for index, frame in enumerate(frames):
        landmarks = find(frame)
        assert landmarks is not None
        np.testing.assert_array_equal(got.landmarks[index], landmarks)
        crop, affine = align_crop(frame, landmarks, CROP_SIZE, SYNC_ALIGN)
        np.testing.assert_array_equal(got.crops[index], crop)
        np.testing.assert_array_equal(got.affines[index], affine)


def test_smoothing_feeds_the_smoothed_track_to_the_same_align_crop(
    talking: tuple[np.ndarray, np.ndarray],
) -> None:
    frames, _ = talking
    got = aligned_face_crops(frames, CROP_SIZE, SYNC_ALIGN, find, SmoothingConfig(window=5))
    assert got is not None
    raw = np.stack([dlib_faces().find(f).landmarks for f in frames])  # type: ignore[union-attr]
    extent = float(np.median((raw.max(axis=1) - raw.min(axis=1)).max(axis=1)))
    smoothed = smooth_landmarks(raw, SmoothingConfig(window=5), 25, extent)
    np.testing.assert_array_equal(got.landmarks, smoothed)
    assert not np.array_equal(smoothed, raw)
    for index in (0, FRAMES // 2, FRAMES - 1):
        crop, _ = align_crop(frames[index], got.landmarks[index], CROP_SIZE, SYNC_ALIGN)
        np.testing.assert_array_equal(got.crops[index], crop)


def test_aligned_crop_is_stable_under_camera_jitter() -> None:
    """A still face shaken by up to ±3 px per frame: in the aligned crop the eye centres and the mouth stay
    within 2 px of their median place; in the box crop they move with the shake."""
    still = face_square(photo("bearded_man"))
    shifts = np.random.default_rng(0).uniform(-3, 3, (FRAMES, 2))
    frames = np.stack([jitter(still, dx, dy) for dx, dy in shifts])
    truth = find(still)
    assert truth is not None
    got = aligned_face_crops(frames, CROP_SIZE, SYNC_ALIGN, find)
    assert got is not None and got.found.all()
    aligned = np.stack(
        [np.stack(face_points(transform_points(truth + shift, a))) for shift, a in zip(shifts, got.affines)]
    )
    deviation = np.linalg.norm(aligned - np.median(aligned, axis=0), axis=-1)
    assert deviation.max() < 2.0 and deviation.mean() < 0.8, deviation
    box_scale = CROP_SIZE / still.shape[0]  # the box crop of a square frame is the whole frame
    box = (truth[None] + shifts[:, None]) * box_scale
    box_deviation = np.linalg.norm(box - np.median(box, axis=0), axis=-1)
    assert box_deviation.mean() > 2 * deviation.mean()


def test_frames_without_a_face_borrow_the_nearest_and_no_face_falls_back_to_the_box(
    talking: tuple[np.ndarray, np.ndarray],
) -> None:
    frames = talking[0].copy()
    frames[3] = 0  # a black frame: no face
    got = aligned_face_crops(frames, CROP_SIZE, SYNC_ALIGN, find)
    assert got is not None and got.found.tolist() == [i != 3 for i in range(FRAMES)]
    np.testing.assert_array_equal(got.landmarks[3], got.landmarks[2])  # tie 2/4: the earlier
    blank = np.zeros((4, 96, 96, 3), np.uint8)
    assert aligned_face_crops(blank, CROP_SIZE, SYNC_ALIGN, find) is None
    crops, aligned = sync_crops(blank, CROP_SIZE, "aligned", SYNC_ALIGN, find)
    assert not aligned  # the fallback is reported, not silent
    np.testing.assert_array_equal(crops, face_crops(blank, CROP_SIZE))
    assert sync_crops(frames, CROP_SIZE, "aligned", SYNC_ALIGN, find)[1]


def test_fill_gaps_takes_the_nearest_frame_with_a_face() -> None:
    points = np.arange(6, dtype=np.float64)[:, None, None] * np.ones((6, 68, 2))
    found = np.array([False, True, False, False, False, True])
    filled = fill_gaps(points, found)
    assert filled[:, 0, 0].tolist() == [1, 1, 1, 1, 5, 5]


@pytest.mark.parametrize("mode", ["box", "aligned"])
def test_the_scorer_feeds_syncnet_the_configured_crop(
    talking: tuple[np.ndarray, np.ndarray], mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, audio = talking
    seen: list[np.ndarray] = []

    def distances(net: object, crops: np.ndarray, sound: np.ndarray, offsets: int) -> np.ndarray:
        seen.append(crops)
        return np.ones((2 * offsets + 1, 3))

    monkeypatch.setattr(scoring, "syncnet_distances", distances)
    networks = SimpleNamespace(syncnet=None, dlib=None)
    accumulator = MetricAccumulator(networks, EvalConfig(sync_crop=mode))  # type: ignore[arg-type]
    accumulator._sync(frames, audio)
    expected = aligned_face_crops(frames, CROP_SIZE, SYNC_ALIGN, find)
    assert expected is not None
    want = face_crops(frames, CROP_SIZE) if mode == "box" else expected.crops
    np.testing.assert_array_equal(seen[0], want)
