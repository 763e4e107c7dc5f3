"""Ground-truth head and mouth motion from a synthetic clip's sidecar JSON, in LivePortrait's 70-d layout.

The `sidecar` structure extractor (`data.struct_extractor=sidecar`) is a stand-in for the LivePortrait
motion extractor that carries what the real one would: the synthetic renderer's own pose, jaw opening and
blink per frame. A random LivePortrait stand-in erases the face (a ridge probe from its features to the
mouth opening reaches r ≈ 0.1); this one makes the structure stream informative, so a model trained on
the synthetic dataset can show whether it learns audio → mouth. It is labelled a stand-in everywhere.

Layout, as `liveportrait.motion_vector`: `[exp (21×3 row-major), pitch, yaw, roll (degrees), tx, ty, tz,
scale]`. The expression deltas move the keypoints LivePortrait's own expression editing moves:
the lip keypoints (`LIP_KEYPOINTS`) open vertically and narrow with the jaw, the eye keypoints close with
a blink and the brow keypoints lift a little with a wide mouth, as the renderer draws them. Translation
is the face centre's swing about the neck pivot, in face half-heights, and scale the renderer's
pitch foreshortening — the same formulas as `sample_data.face`. Canonical keypoints are one fixed
template: the sidecar does not describe the identity's geometry.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dualforce_core.errors import UserError
from dualforce_core.models.struct_tokens import LIP_KEYPOINTS
from dualforce_core.motion_layout import MOTION_DIM, NUM_KP
from dualforce_core.timeline import FPS

EYE_KEYPOINTS = (11, 13, 15, 16, 18)
BROW_KEYPOINTS = (1, 2)
UPPER_LIP = (6, 12)  # the lip keypoints that stay with the skull; the rest drop with the jaw
EXP_SCALE = 0.03  # LivePortrait's expression deltas are a few hundredths of the keypoint extent
TRACKS = ("mouth_open", "yaw", "pitch", "roll", "blink")


def canonical_keypoints() -> np.ndarray:
    """A fixed [21, 3] face template in LivePortrait's canonical range (about ±0.5), deterministic."""
    angle = np.linspace(0.0, 2.0 * np.pi, NUM_KP, endpoint=False)
    radius = 0.35 + 0.1 * np.cos(3.0 * angle)
    return np.stack([radius * np.sin(angle), -radius * np.cos(angle), 0.1 * np.cos(angle)], axis=1).astype(
        np.float32
    )


def motion_from_tracks(
    mouth_open: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray, blink: np.ndarray
) -> np.ndarray:
    """Per-frame tracks (mouth/blink in [0, 1], angles in degrees) → float32 [T, 70] motion vectors."""
    frames = len(mouth_open)
    exp = np.zeros((frames, NUM_KP, 3), np.float64)
    for kp in LIP_KEYPOINTS:
        drop = 0.3 if kp in UPPER_LIP else 1.0
        exp[:, kp, 1] = drop * mouth_open  # lips part downwards with the jaw
        exp[:, kp, 0] = -0.15 * np.sign(kp % 2 - 0.5) * mouth_open  # and the mouth narrows
    for kp in EYE_KEYPOINTS:
        exp[:, kp, 1] = 0.5 * blink
    for kp in BROW_KEYPOINTS:
        exp[:, kp, 1] = -0.25 * mouth_open
    pitch_r, yaw_r, roll_r = np.radians(pitch), np.radians(yaw), np.radians(roll)
    offset_x, offset_y = 0.35 * np.sin(yaw_r), -1.7 - 0.35 * np.sin(pitch_r)
    tx = np.cos(roll_r) * offset_x - np.sin(roll_r) * offset_y
    ty = np.sin(roll_r) * offset_x + np.cos(roll_r) * offset_y + 1.7
    scale = 1.0 + 0.06 * np.sin(pitch_r)
    motion = np.concatenate(
        [
            EXP_SCALE * exp.reshape(frames, 3 * NUM_KP),
            np.stack([pitch, yaw, roll, tx, ty, np.zeros(frames), scale], axis=1),
        ],
        axis=1,
    )
    assert motion.shape[1] == MOTION_DIM
    return motion.astype(np.float32)


def mouth_open_from_motion(motion: np.ndarray) -> np.ndarray:
    """Inverse of `motion_from_tracks` for the jaw: raw [T, 70] motion → [T] opening (the mean vertical
    delta of the lip keypoints that drop with the jaw). Reads a generated structure stream's mouth."""
    lower = [kp for kp in LIP_KEYPOINTS if kp not in UPPER_LIP]
    return np.asarray(motion, np.float64)[:, [3 * kp + 1 for kp in lower]].mean(axis=1) / EXP_SCALE


def sidecar_tracks(sidecar: Path, start_frame: int, num_frames: int) -> dict[str, np.ndarray]:
    """The clip's frames of a sidecar's `TRACKS` (25 fps timeline → source frames), float64 [num_frames] each."""
    try:
        record = json.loads(sidecar.read_text())
        tracks = {name: np.asarray(record[name], np.float64) for name in TRACKS}
        fps = float(record.get("fps", FPS))
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"cannot read motion tracks {TRACKS} from sidecar {sidecar}: {err}") from None
    index = np.rint((start_frame + np.arange(num_frames)) * fps / FPS).astype(np.int64)
    shortest = min(len(t) for t in tracks.values())
    if index[-1] >= shortest:
        raise UserError(
            f"sidecar {sidecar} has {shortest} frames of motion; the clip needs source frames up to {index[-1]}"
        )
    return {name: track[index] for name, track in tracks.items()}


def sidecar_motion(sidecar: Path, start_frame: int, num_frames: int) -> np.ndarray:
    """The clip's ground-truth motion as [num_frames, 70] in LivePortrait's layout."""
    return motion_from_tracks(**sidecar_tracks(sidecar, start_frame, num_frames))
