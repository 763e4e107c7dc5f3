"""LMD and the landmark mouth-audio r: hand-computed cases, then a real face moving with real speech.

Measured on the talking clip (a real photograph, mouth opened by up to 12.8 px of the 256 px crop with the
loudness of espeak-ng speech, 50 frames): landmark r = 0.99 with its own audio, 0.25 with the audio reversed,
0.11 with it 6 frames late; LMD of the still portrait against the clip 1.90 px, of the clip moved by (3, −2)
px 0.75 px and of its JPEG (quality 60) copy 0.60 px — the predictor's noise floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from dualforce_core.errors import UserError
from dualforce_core.metrics import VideoFaces, landmark_audio_correlation, lmd, mouth_opening
from dualforce_core.timeline import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from tests.metrics.real_faces import dlib_faces, face_square, jitter, loudness, photo, speech, talking_clip

FRAMES = 50


def face_landmarks(frames: int = 1, seed: int = 0) -> np.ndarray:
    """[frames, 68, 2] plausible points: random, then a mouth with corners 50 px apart and a 10 px inner gap."""
    points = np.random.default_rng(seed).uniform(0, 200, (frames, 68, 2))
    points[:, 48] = (75, 150)
    points[:, 54] = (125, 150)
    for upper, lower, x in ((61, 67, 90), (62, 66, 100), (63, 65, 110)):
        points[:, upper] = (x, 145)
        points[:, lower] = (x, 155)
    return points


def test_lmd_is_the_mean_distance_of_mean_centred_mouth_points_hand_computed() -> None:
    real = face_landmarks(frames=2)
    fake = real.copy()
    fake[:, 65:68, 1] += 3.0  # three inner lower-lip points 3 px lower, in both frames
    # Centring moves every point up by the mean shift 3·3/20 = 0.45 px: three points end 2.55 px off,
    # seventeen 0.45 px off; mean (3·2.55 + 17·0.45) / 20 = 0.765 px.
    assert lmd(fake, real) == pytest.approx(0.765, rel=1e-12)
    assert lmd(real, real) == 0.0
    assert lmd(real + np.array([7.0, -4.0]), real) == pytest.approx(0.0, abs=1e-12)  # where the head is
    fake[:, :48] += 50.0  # eyes, nose, jaw are not the mouth
    assert lmd(fake, real) == pytest.approx(0.765, rel=1e-12)


def test_lmd_leaves_out_frames_without_a_face_on_either_side() -> None:
    real, fake = face_landmarks(frames=3), face_landmarks(frames=3)
    fake[:, 65:68, 1] += 3.0
    fake[1] = np.nan  # no face in generated frame 1: its large error must not count
    real[1, 48:68] += 40.0
    assert lmd(fake, real) == pytest.approx(0.765, rel=1e-12)
    assert np.isnan(lmd(np.full_like(real, np.nan), real))
    with pytest.raises(UserError, match="corresponding frames"):
        lmd(real[:2], real)
    with pytest.raises(UserError, match=r"\[T, 68, 2\]"):
        lmd(real[:, :20], real[:, :20])


def test_mouth_opening_is_the_inner_gap_over_the_mouth_width_hand_computed() -> None:
    points = face_landmarks(frames=2)
    points[1, [65, 66, 67], 1] += 5.0  # lower inner lip 5 px lower: gap 15 px
    points[1] *= 2.0  # and the whole face twice as large: the ratio does not care
    np.testing.assert_allclose(mouth_opening(points), [10 / 50, 15 / 50], rtol=1e-12)
    points[0] = np.nan
    assert np.isnan(mouth_opening(points)[0])


def test_landmark_r_skips_frame_0_and_faceless_frames_and_needs_three_frames() -> None:
    opening = np.array([0.9, 0.1, 0.3, 0.2, 0.5, 0.4])
    points = face_landmarks(frames=len(opening))
    points[:, 65:68, 1] = 145 + 50 * opening[:, None]  # gap = 50·opening, width 50: mouth_opening = opening
    loud = np.array([0.0, 0.1, 0.3, 0.2, 0.5, 0.4])  # follows the opening except frame 0
    audio = np.repeat(loud, SAMPLES_PER_FRAME) * np.tile([1.0, -1.0], len(loud) * SAMPLES_PER_FRAME // 2)
    assert landmark_audio_correlation(points, audio, SAMPLE_RATE, FPS) == pytest.approx(1.0, abs=1e-9)
    assert landmark_audio_correlation(points, audio, SAMPLE_RATE, FPS, skip_frames=0) < 0.5
    points[2:4] = np.nan
    assert landmark_audio_correlation(points, audio, SAMPLE_RATE, FPS) == pytest.approx(1.0, abs=1e-9)
    points[4] = np.nan
    assert np.isnan(landmark_audio_correlation(points, audio, SAMPLE_RATE, FPS))  # frames 1 and 5 only


@pytest.fixture(scope="module")
def talking() -> tuple[np.ndarray, np.ndarray, VideoFaces]:
    """A real face opening its mouth with real speech: frames, audio, and dlib's landmarks of the frames."""
    audio = speech()
    frames = talking_clip(face_square(photo("smiling_man")), loudness(audio, FRAMES))
    measured = dlib_faces().video(frames)
    assert measured.found.all()
    return frames, audio, measured


def test_landmark_mouth_r_follows_real_speech_on_a_real_face(
    talking: tuple[np.ndarray, np.ndarray, VideoFaces],
) -> None:
    _, audio, measured = talking
    in_sync = landmark_audio_correlation(measured.landmarks, audio, SAMPLE_RATE, FPS)
    reversed_audio = landmark_audio_correlation(measured.landmarks, audio[::-1].copy(), SAMPLE_RATE, FPS)
    late = np.concatenate([np.zeros(6 * SAMPLES_PER_FRAME, np.float32), audio])  # sound 6 frames late
    shifted = landmark_audio_correlation(measured.landmarks, late, SAMPLE_RATE, FPS)
    assert in_sync > 0.9  # measured 0.99
    assert reversed_audio < 0.5 and shifted < 0.5  # measured 0.25 and 0.11


def test_lmd_on_a_real_face_tells_a_still_mouth_from_the_landmark_noise(
    talking: tuple[np.ndarray, np.ndarray, VideoFaces],
) -> None:
    frames, _, measured = talking
    faces = dlib_faces()
    still = faces.video(np.repeat(frames[:1], FRAMES, axis=0))
    moved = faces.video(np.stack([jitter(f, dx=3, dy=-2) for f in frames]))
    compressed = faces.video(np.stack([jitter(f, jpeg=60) for f in frames]))
    assert lmd(measured.landmarks, measured.landmarks) == 0.0
    noise = max(lmd(moved.landmarks, measured.landmarks), lmd(compressed.landmarks, measured.landmarks))
    assert noise < 1.0  # measured 0.75 (moved) and 0.60 (JPEG)
    assert lmd(still.landmarks, measured.landmarks) > 1.5  # measured 1.90: the mouth did not move
    opening = mouth_opening(measured.landmarks)
    assert np.isfinite(opening).all() and opening.max() > 1.5 * opening.min()
