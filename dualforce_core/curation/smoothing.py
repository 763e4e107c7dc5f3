"""Temporal smoothing of a track's landmarks [T, N, 2], each coordinate on its own.

- `savgol` (default): Savitzky–Golay, a least-squares polynomial over a centred window. Offline curation
  sees the whole track, so a zero-lag filter is possible: a face moving at constant speed (or
  acceleration, for order 2) passes unchanged, only frame-to-frame jitter is removed.
- `one_euro`: the causal filter of Casiez et al. (CHI 2012): a low-pass whose cutoff rises with speed,
  for a streaming caller (a live portrait); it lags a little on fast motion.
"""

from __future__ import annotations

import math

import numpy as np

from dualforce_core.curation.config import SmoothingConfig


def savgol(points: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky–Golay along axis 0; the window shrinks (stays odd, > order) for short tracks."""
    length = points.shape[0]
    window = min(window, length if length % 2 else length - 1)
    if window <= order:
        return points.copy()
    # Imported here: scipy.signal costs ~1.3 s to import, and the config tree imports this package
    # (`data.curation`), so every CLI start would pay it.
    from scipy.signal import savgol_filter

    return np.asarray(savgol_filter(points, window, order, axis=0, mode="interp"), np.float64)


def _alpha(cutoff: float, rate: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


def one_euro(
    points: np.ndarray, rate: float, min_cutoff: float, beta: float, d_cutoff: float, scale: float
) -> np.ndarray:
    """One-euro filter along axis 0 at `rate` frames/s; `beta` is per `scale` (the face size) per second."""
    out = np.empty_like(points, dtype=np.float64)
    if points.shape[0] == 0:
        return out
    value = points[0].astype(np.float64)
    speed = np.zeros_like(value)
    out[0] = value
    for t in range(1, points.shape[0]):
        raw = points[t].astype(np.float64)
        speed = speed + _alpha(d_cutoff, rate) * ((raw - value) * rate - speed)
        cutoff = min_cutoff + beta * np.abs(speed) / max(scale, 1e-6)
        tau = 1.0 / (2 * np.pi * cutoff)
        alpha = 1.0 / (1.0 + tau * rate)
        value = value + alpha * (raw - value)
        out[t] = value
    return out


def smooth_landmarks(
    landmarks: np.ndarray, config: SmoothingConfig, fps: float, face_size: float
) -> np.ndarray:
    """Smoothed copy of landmarks [T, N, 2] (float64)."""
    points = np.asarray(landmarks, np.float64)
    if config.method == "none" or points.shape[0] < 3:
        return points.copy()
    if config.method == "savgol":
        return savgol(points, config.window, config.order)
    return one_euro(points, fps, config.min_cutoff, config.beta, config.d_cutoff, face_size)
