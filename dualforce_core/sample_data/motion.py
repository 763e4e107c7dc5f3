"""Per-frame ground truth of one clip: jaw opening from the speech, head pose, eye blinks.

Every trajectory is a pure function of the clip's random generator and the speech envelope, so the
sidecar JSON can state exactly what the renderer drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualforce_core.sample_data.speech import frame_rms

POSE_RANGE_DEG = {"yaw": 18.0, "pitch": 9.0, "roll": 7.0}
"""Rough peak head rotation per axis, in degrees (the LivePortrait convention's unit)."""


@dataclass(frozen=True)
class Motion:
    mouth_open: np.ndarray  # [T] in [0, 1]: 0 closed lips, 1 jaw fully dropped
    yaw: np.ndarray  # [T] degrees, positive turns the face towards image right
    pitch: np.ndarray  # [T] degrees, positive tilts the face up
    roll: np.ndarray  # [T] degrees, positive tilts the head clockwise in the image
    blink: np.ndarray  # [T] in [0, 1]: 0 eyes open, 1 eyes shut

    @property
    def num_frames(self) -> int:
        return len(self.mouth_open)


def mouth_from_envelope(envelope: np.ndarray, rate: int, fps: int, num_frames: int) -> np.ndarray:
    """Jaw opening per frame: the frame RMS of the vowel envelope, which is what the audio's loudness follows."""
    return np.clip(frame_rms(envelope, rate, fps, num_frames), 0.0, 1.0)


def _smooth_wander(rng: np.random.Generator, t: np.ndarray, peak: float) -> np.ndarray:
    """A slow, smooth random trajectory: three sinusoids between 0.08 and 0.7 Hz."""
    freqs = rng.uniform(0.08, 0.7, 3)
    amps = rng.uniform(0.3, 1.0, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    wave = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])).sum(axis=0)
    return peak * wave / amps.sum()


def head_pose(
    rng: np.random.Generator, num_frames: int, fps: int, mouth_open: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Yaw, pitch, roll in degrees; the head also nods a little with emphasis, as speakers do."""
    t = np.arange(num_frames) / fps
    yaw = _smooth_wander(rng, t, POSE_RANGE_DEG["yaw"])
    nod_kernel = np.hanning(9) / np.hanning(9).sum()
    nod = np.convolve(mouth_open, nod_kernel, mode="same")
    pitch = _smooth_wander(rng, t, POSE_RANGE_DEG["pitch"] * 0.8) - 2.5 * nod
    roll = _smooth_wander(rng, t, POSE_RANGE_DEG["roll"])
    return yaw, pitch, roll


def blinks(rng: np.random.Generator, num_frames: int, fps: int) -> np.ndarray:
    """Eyelid closure: blinks every 1.5–5 s, each shutting fast (~80 ms) and opening slower (~160 ms)."""
    closure = np.zeros(num_frames)
    t = np.arange(num_frames) / fps
    start = float(rng.uniform(0.2, 2.5))
    while start < num_frames / fps:
        close, reopen = float(rng.uniform(0.06, 0.1)), float(rng.uniform(0.12, 0.2))
        rise = np.clip((t - start) / close, 0.0, 1.0)
        fall = np.clip(1.0 - (t - start - close) / reopen, 0.0, 1.0)
        closure = np.maximum(closure, np.where(t < start + close, rise, fall) * (t >= start))
        start += float(rng.uniform(1.5, 5.0))
    return closure


def clip_motion(
    rng: np.random.Generator, envelope: np.ndarray, rate: int, fps: int, num_frames: int
) -> Motion:
    mouth = mouth_from_envelope(envelope, rate, fps, num_frames)
    yaw, pitch, roll = head_pose(rng, num_frames, fps, mouth)
    return Motion(mouth_open=mouth, yaw=yaw, pitch=pitch, roll=roll, blink=blinks(rng, num_frames, fps))
