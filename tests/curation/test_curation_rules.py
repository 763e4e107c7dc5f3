"""The reject rules and the smoothing, on tracks made from real landmarks moved by known motion."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dualforce_core.curation import CurationConfig, FaceModels, curate_frames
from dualforce_core.curation import corpus as corpus_module
from dualforce_core.curation.curate import assemble
from dualforce_core.curation.smoothing import smooth_landmarks
from dualforce_core.curation.track import Embedding, RawTrack, TrackFrame
from dualforce_core.errors import UserError

CONFIG = CurationConfig(min_frames=5)


@pytest.fixture(scope="module")
def face(models: FaceModels) -> np.ndarray:
    corpus_module.check_media()
    image = corpus_module.load_image("C")
    points = corpus_module.photo_landmarks(models, image)
    return (points - points.mean(axis=0)) * (110 / np.ptp(points[:, 0])) + np.array([200.0, 150.0])


def track(track_id: int, first: int, paths: list[np.ndarray], blur: float = 300.0) -> RawTrack:
    raw = RawTrack(track_id)
    for n, points in enumerate(paths):
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        raw.frames.append(TrackFrame(first + n, (x0, y0, x1, y1), points, n % 5 == 0, blur))
    raw.embeddings.append(Embedding(first, np.full(128, 0.05 * track_id), 0.0))
    return raw


def moved(
    face: np.ndarray, frames: int, step: tuple[float, float], jump_at: int | None = None
) -> list[np.ndarray]:
    out = []
    offset = np.zeros(2)
    for n in range(frames):
        offset = offset + np.asarray(step)
        if n == jump_at:
            offset = offset + np.array([60.0, 0.0])  # about half a face in one frame
        out.append(face + offset)
    return out


def test_head_motion_splits_the_track(face: np.ndarray) -> None:
    tracks = [track(0, 0, moved(face, 30, (0.5, 0.2), jump_at=15))]
    clips, rejects = assemble(tracks, [], 30, CONFIG, 25.0)
    assert [(c.start, c.end) for c in clips] == [(0, 15), (16, 30)]
    assert [(r.start, r.end, r.reason) for r in rejects] == [(15, 16, "head_motion")]
    assert rejects[0].value == pytest.approx(60.5 / 110, rel=0.1)
    # A clip never smooths across the jump: its first frame is framed on its own landmarks.
    second = clips[1]
    assert np.abs(second.landmarks[0] - second.landmarks[1]).max() < 2.0


def test_largest_face_is_kept_and_the_smaller_rejected(face: np.ndarray) -> None:
    small = (face - face.mean(axis=0)) * 0.5 + np.array([330.0, 60.0])
    tracks = [track(0, 0, moved(face, 20, (0.3, 0))), track(1, 0, moved(small, 20, (0.3, 0)))]
    clips, rejects = assemble(tracks, [], 20, CONFIG, 25.0)
    assert [(c.track_id, c.start, c.end) for c in clips] == [(0, 0, 20)]
    assert [(r.track_id, r.reason) for r in rejects] == [(1, "secondary_face")]
    assert rejects[0].value == pytest.approx(0.5, abs=0.01)
    strict = CONFIG.model_copy(update={"several_faces": "reject"})
    clips, rejects = assemble(tracks, [], 20, strict, 25.0)
    assert clips == [] and {(r.track_id, r.reason, r.value) for r in rejects} == {
        (0, "several_faces", 2.0),
        (1, "several_faces", 2.0),
    }


def test_a_one_off_detection_does_not_split_a_clip(face: np.ndarray) -> None:
    ghost = (face - face.mean(axis=0)) + np.array([330.0, 60.0])
    tracks = [track(0, 0, moved(face, 20, (0.3, 0))), track(1, 10, [ghost])]
    clips, rejects = assemble(tracks, [], 20, CONFIG, 25.0)
    assert [(c.start, c.end) for c in clips] == [(0, 20)]
    assert [(r.start, r.end, r.reason) for r in rejects] == [(10, 11, "short_track")]


def test_no_face_gaps_and_short_tracks(face: np.ndarray) -> None:
    tracks = [track(0, 3, moved(face, 10, (0.2, 0))), track(1, 20, moved(face, 3, (0.2, 0)))]
    clips, rejects = assemble(tracks, [], 30, CONFIG, 25.0)
    assert [(c.start, c.end) for c in clips] == [(3, 13)]
    assert [(r.start, r.end, r.reason, r.value) for r in rejects] == [
        (0, 3, "no_face", 0.0),
        (13, 20, "no_face", 0.0),
        (20, 23, "short_track", 3.0),
        (23, 30, "no_face", 0.0),
    ]


def test_smoothing_removes_jitter(face: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    still = np.stack([face] * 40)
    moving = np.stack(moved(face, 40, (2.0, 0.5)))
    for clean in (still, moving):
        noisy = clean + rng.normal(0, 1.0, clean.shape)
        before = np.abs(noisy - clean).mean()
        savgol = smooth_landmarks(noisy, CONFIG.smoothing, 25.0, 110.0)
        assert np.abs(savgol - clean).mean() < 0.7 * before
        # Zero lag: the mean error over the track is ~0 even while the face moves 2 px a frame.
        assert np.abs((savgol - clean).mean(axis=(0, 1))).max() < 0.2
    one_euro = CONFIG.smoothing.model_copy(update={"method": "one_euro"})
    noisy = still + rng.normal(0, 1.0, still.shape)
    smooth = smooth_landmarks(noisy, one_euro, 25.0, 110.0)
    assert np.abs(smooth - still)[10:].mean() < 0.7 * np.abs(noisy - still).mean()


def test_config_is_checked(models: FaceModels) -> None:
    with pytest.raises(ValidationError):
        CurationConfig(smoothing={"window": 8})
    with pytest.raises(ValidationError):
        CurationConfig.model_validate({"unknown": 1})
    with pytest.raises(UserError, match="upsample"):
        curate_frames([], CurationConfig(upsample=0), models)
    with pytest.raises(UserError, match="uint8 RGB"):
        curate_frames([np.zeros((8, 8), np.uint8)], CONFIG, models)
