"""Mouth metrics from dlib's 68 landmarks: LMD against the ground truth, and mouth opening vs the audio.

Both read landmarks [T, 68, 2] (`dlib_faces.DlibFaces.video`) measured on the same square face crops of the
generated and the ground-truth video (`dlib_faces.CROP_SIZE` px), NaN where no face was found; frames
without a face on the side(s) a number needs are left out.

LMD, landmark distance (Chen et al., "Lip Movements Generation at a Glance", ECCV 2018; ATVGnet, Chen et
al., CVPR 2019): the mean over frames t and the P = 20 mouth points p (48–67: outer lip 48–59, inner lip
60–67) of ‖g_tp − r_tp‖₂, generated vs ground truth, in pixels of the 256×256 crop. Each frame's mouth is
first centred on the mean of its 20 points, as ATVGnet's released evaluation script does, so a head that
sits a few pixels elsewhere is not counted, only the mouth's shape. (That script sums over the 20 points
where the papers' formula averages; its numbers are 20× this definition's at equal crop size.)

Mouth-audio r from landmarks: per frame the inner-lip opening — the mean of the three vertical inner-lip
gaps 61–67, 62–66, 63–65 — divided by the mouth width 48–54 (so head size and distance cancel), and its
Pearson r with the waveform's RMS over each frame's 40 ms (`mouth.audio_envelope`), frame 0 left out (a
generator's frame 0 is the reference portrait). The real-video counterpart of the synthetic MouthProbe
score: no fitting, any real face.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dualforce_core.errors import UserError
from dualforce_core.metrics.mouth import audio_envelope, pearson

MOUTH = slice(48, 68)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
MOUTH_CORNERS = (48, 54)
MIN_FRAMES_FOR_R = 3


def _landmarks(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 3 or array.shape[1:] != (68, 2):
        raise UserError(f"{name} must be 68-point landmarks [T, 68, 2], got shape {array.shape}")
    return array


def _found(landmarks: np.ndarray) -> np.ndarray:
    return np.isfinite(landmarks).all(axis=(1, 2))


def lmd(generated: Any, ground_truth: Any) -> float:
    """Mean L2 distance of mean-centred mouth landmarks, frame by frame; NaN when no frame has both faces."""
    fake, real = _landmarks(generated, "generated"), _landmarks(ground_truth, "ground_truth")
    if fake.shape != real.shape:
        raise UserError(f"LMD compares corresponding frames: shapes {fake.shape} and {real.shape} differ")
    both = _found(fake) & _found(real)
    if not both.any():
        return float("nan")
    mouths = [m[both, MOUTH] - m[both, MOUTH].mean(axis=1, keepdims=True) for m in (fake, real)]
    return float(np.linalg.norm(mouths[0] - mouths[1], axis=-1).mean())


def mouth_opening(landmarks: Any) -> np.ndarray:
    """Inner-lip opening over mouth width per frame [T]; NaN where no face was found."""
    points = _landmarks(landmarks, "landmarks")
    gaps = np.mean([np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in INNER_LIP_PAIRS], axis=0)
    width = np.linalg.norm(points[:, MOUTH_CORNERS[0]] - points[:, MOUTH_CORNERS[1]], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, gaps / width, np.nan)


def landmark_audio_correlation(
    landmarks: Any, audio: np.ndarray, sample_rate: int, fps: int, skip_frames: int = 1
) -> float:
    """Pearson r of `mouth_opening` and the audio's RMS envelope over the frames with a face.

    NaN when fewer than 3 such frames remain after the first `skip_frames`.
    """
    opening = mouth_opening(landmarks)
    envelope = audio_envelope(audio, sample_rate, fps, len(opening))
    usable = np.isfinite(opening)
    usable[:skip_frames] = False
    if usable.sum() < MIN_FRAMES_FOR_R:
        return float("nan")
    return pearson(opening[usable], envelope[usable])
