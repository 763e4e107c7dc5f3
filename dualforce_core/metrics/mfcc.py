"""SyncNet's audio front end: `python_speech_features.mfcc(audio, 16000)` with its defaults, in numpy.

SyncNet v2 was trained on exactly these features, so every default is kept: 25 ms frames every 10 ms
(100 Hz) with no window function, pre-emphasis 0.97, a 512-point power spectrum divided by 512, 26
triangular mel filters over 0–8 kHz placed on FFT bins with `floor((nfft+1)·f/sr)`, natural log,
orthonormal DCT-II, the first 13 coefficients, sinusoidal lifter 22, and coefficient 0 replaced by
the log of the frame's total power. The last frame is zero-padded, not dropped.

syncnet_python reads a 16-bit PCM wav with scipy, so the features see integer sample values:
float audio in [-1, 1] is converted to 16-bit PCM values first (×32768, rounded, clipped). Without
that the log energies shift by a constant the network has never seen. python_speech_features is not
a dependency; this reimplementation is checked property by property in tests/metrics/test_mfcc.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.fft import dct

from dualforce_core.errors import UserError
from dualforce_core.timeline import SAMPLE_RATE

FRAME_LENGTH = 400  # 25 ms
FRAME_STEP = 160  # 10 ms, so 4 steps per video frame at 25 fps
NFFT = 512
NUM_FILTERS = 26
NUM_CEPSTRA = 13
PREEMPHASIS = 0.97
LIFTER = 22


def to_pcm16(audio: Any) -> np.ndarray:
    """Float audio in [-1, 1] as the 16-bit sample values a pcm_s16le wav holds (float64)."""
    samples = np.asarray(audio, dtype=np.float64)
    return np.clip(np.round(samples * 32768.0), -32768.0, 32767.0)


def mel_filterbank(
    num_filters: int = NUM_FILTERS, nfft: int = NFFT, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Triangular filters [num_filters, nfft//2 + 1] on integer FFT bins, as python_speech_features builds them."""
    high_mel = 2595.0 * np.log10(1.0 + (sample_rate / 2) / 700.0)
    mel_points = np.linspace(0.0, high_mel, num_filters + 2)
    hz_points = 700.0 * (10.0 ** (mel_points / 2595.0) - 1.0)
    edges = np.floor((nfft + 1) * hz_points / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bins = np.arange(nfft // 2 + 1, dtype=np.float64)[None, :]
    # A filter whose edges share a bin has an empty slope there; the max(…, 1) only avoids 0/0.
    rising = np.where((bins >= lower) & (bins < centre), (bins - lower) / np.maximum(centre - lower, 1), 0.0)
    falling = np.where((bins >= centre) & (bins < upper), (upper - bins) / np.maximum(upper - centre, 1), 0.0)
    return rising + falling


def num_frames(num_samples: int) -> int:
    """Frames python_speech_features makes from a signal: the last partial frame is padded, not dropped."""
    if num_samples <= FRAME_LENGTH:
        return 1
    return 1 + int(np.ceil((num_samples - FRAME_LENGTH) / FRAME_STEP))


def mfcc(audio: Any) -> np.ndarray:
    """MFCCs [num_frames, 13] at 100 Hz of float mono audio in [-1, 1] sampled at 16 kHz."""
    samples = to_pcm16(audio)
    if samples.ndim != 1 or samples.size == 0:
        raise UserError(f"audio must be a non-empty mono signal [samples], got shape {samples.shape}")
    emphasised = np.append(samples[0], samples[1:] - PREEMPHASIS * samples[:-1])
    count = num_frames(emphasised.size)
    padded = np.zeros((count - 1) * FRAME_STEP + FRAME_LENGTH)
    padded[: emphasised.size] = emphasised
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME_LENGTH)[::FRAME_STEP]
    power = np.abs(np.fft.rfft(frames, NFFT)) ** 2 / NFFT
    eps = np.finfo(np.float64).eps
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, eps, energy)
    banks = power @ mel_filterbank().T
    banks = np.where(banks == 0, eps, banks)
    cepstra = dct(np.log(banks), type=2, axis=1, norm="ortho")[:, :NUM_CEPSTRA]
    cepstra *= 1.0 + (LIFTER / 2.0) * np.sin(np.pi * np.arange(NUM_CEPSTRA) / LIFTER)
    cepstra[:, 0] = np.log(energy)
    return cepstra
