"""Speech-like audio whose loudness is known exactly, so the mouth can be made to follow it.

Words of 1–4 syllables separated by pauses; each syllable is a vowel: a harmonic series on a pitch
contour, shaped by three formant resonances, under an attack/decay amplitude envelope, sometimes led
by a short fricative noise. The carrier is normalised to unit RMS at every instant, so the frame RMS
of the audio is the frame RMS of the envelope times a constant — that is what makes the ground-truth
mouth opening (`frame_rms(envelope)`) line up with what an audio encoder sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTROL_RATE = 200
"""Hz at which formant gains are computed before interpolation to audio rate (they change slowly)."""

LEVEL = 0.25
"""Amplitude of a fully open vowel; leaves headroom below full scale for the carrier's peaks."""

NOISE_FLOOR = 0.0015
"""Room noise under everything, so pauses are quiet rather than digital silence."""

VOWELS = np.array(
    [  # F1, F2, F3 (Hz) of an adult voice: a, e, i, o, u, schwa
        [730.0, 1090.0, 2440.0],
        [530.0, 1840.0, 2480.0],
        [270.0, 2290.0, 3010.0],
        [570.0, 840.0, 2410.0],
        [300.0, 870.0, 2240.0],
        [500.0, 1500.0, 2500.0],
    ]
)
BANDWIDTHS = np.array([90.0, 110.0, 170.0])
FORMANT_GAINS = np.array([1.0, 0.7, 0.35])


@dataclass(frozen=True)
class Speech:
    audio: np.ndarray  # float32 [N] in [-1, 1]
    envelope: np.ndarray  # float32 [N] in [0, 1]: how open the vocal tract is (vowel amplitude)
    rate: int


@dataclass(frozen=True)
class _Syllable:
    start: float  # seconds
    duration: float
    amplitude: float
    vowel: int
    word_start: float
    word_end: float
    fricative: float  # seconds of noise before the vowel (0 = none)


def _syllables(rng: np.random.Generator, seconds: float) -> list[_Syllable]:
    """Words of syllables with pauses, starting at a random point (possibly mid-syllable, as a cut from
    a longer talk would), so clips share no common onset."""
    out: list[_Syllable] = []
    t = float(rng.uniform(-0.25, 0.3))
    while t < seconds:
        count = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
        durations = rng.uniform(0.1, 0.26, count)
        gaps = rng.uniform(0.0, 0.05, count)
        word_start, word_end = t, t + float(durations.sum() + gaps[:-1].sum())
        for k in range(count):
            stress = 1.0 if k == 0 else float(rng.uniform(0.55, 0.95))
            out.append(
                _Syllable(
                    start=t,
                    duration=float(durations[k]),
                    amplitude=stress * float(rng.uniform(0.7, 1.0)),
                    vowel=int(rng.integers(len(VOWELS))),
                    word_start=word_start,
                    word_end=word_end,
                    fricative=float(rng.uniform(0.02, 0.05)) if rng.random() < 0.4 else 0.0,
                )
            )
            t += float(durations[k] + gaps[k])
        long_pause = rng.random() < 0.2
        t += float(rng.uniform(0.45, 0.9) if long_pause else rng.uniform(0.1, 0.35))
    return out


def _syllable_shape(u: np.ndarray, attack: float) -> np.ndarray:
    """0 → 1 → 0 over u ∈ [0, 1): a quick quarter-sine rise, a longer quarter-cosine fall."""
    rise = np.sin(0.5 * np.pi * np.clip(u / attack, 0.0, 1.0))
    fall = np.cos(0.5 * np.pi * np.clip((u - attack) / (1.0 - attack), 0.0, 1.0))
    return np.where(u < attack, rise, fall) ** 1.5


def synthesize_speech(
    rng: np.random.Generator, seconds: float, rate: int, f0: float, formant_scale: float
) -> Speech:
    """`seconds` of speech-like audio at `rate` Hz from a voice with mean pitch `f0` Hz."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    envelope = np.zeros(n)
    vowel_at = np.full(n, len(VOWELS) - 1)
    pitch_shape = np.zeros(n)  # declination inside each word, in octaves
    fricative_env = np.zeros(n)
    for syl in _syllables(rng, seconds):
        onset = round(syl.start * rate)
        lo, hi = max(0, onset), min(n, round((syl.start + syl.duration) * rate))
        if hi <= lo:  # wholly before the cut
            continue
        u = (np.arange(lo, hi) - onset) / (syl.duration * rate)
        envelope[lo:hi] = syl.amplitude * _syllable_shape(u, attack=float(rng.uniform(0.2, 0.35)))
        vowel_at[lo:hi] = syl.vowel
        span = max(syl.word_end - syl.word_start, 1e-3)
        pitch_shape[lo:hi] = 0.12 - 0.24 * (t[lo:hi] - syl.word_start) / span
        f_lo = onset - round(0.6 * syl.fricative * rate)
        if syl.fricative and f_lo >= 0:
            f_hi = min(n, f_lo + round(syl.fricative * rate))
            fricative_env[f_lo:f_hi] = 0.2 * syl.amplitude * np.hanning(f_hi - f_lo)

    # Pitch: word declination, slow intonation, a little vibrato; integrated into a phase.
    slow = sum(
        float(rng.uniform(0.03, 0.08))
        * np.sin(2 * np.pi * float(rng.uniform(0.3, 1.2)) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(2)
    )
    vibrato = 0.006 * np.sin(2 * np.pi * 5.5 * t)
    pitch = f0 * 2.0 ** (pitch_shape + slow + vibrato)
    phase = 2 * np.pi * np.cumsum(pitch) / rate

    # Harmonic gains from formant resonances at control rate, normalised to a unit-RMS carrier.
    step = rate // CONTROL_RATE
    ctl = np.arange(0, n, step)
    formants = VOWELS[vowel_at[ctl]] * formant_scale  # [C, 3]
    top = min(5000.0, 0.45 * rate)
    harmonics = int(top // (f0 * 0.7))
    ks = np.arange(1, harmonics + 1)
    freqs = ks[:, None] * pitch[ctl][None, :]  # [K, C]
    gains = np.zeros_like(freqs)
    for j in range(3):
        detune = (freqs - formants[None, :, j]) / BANDWIDTHS[j]
        gains += FORMANT_GAINS[j] / (1.0 + detune**2)
    gains *= ks[:, None] ** -0.6 * (freqs < top)
    gains /= np.sqrt(0.5 * (gains**2).sum(axis=0, keepdims=True))
    offsets = rng.uniform(0, 2 * np.pi, harmonics)
    # Linear interpolation of the gains and harmonic k as the k-th power of e^{i·phase}: one complex
    # multiply per harmonic instead of a sine, which keeps 48 kHz synthesis cheap.
    position = np.arange(n) / step
    below = np.minimum(position.astype(int), len(ctl) - 1)
    above = np.minimum(below + 1, len(ctl) - 1)
    frac = position - below
    fundamental = np.exp(1j * phase)
    rotor = np.ones(n, dtype=complex)
    carrier = np.zeros(n)
    for k in range(harmonics):
        rotor *= fundamental
        gain = gains[k, below] + (gains[k, above] - gains[k, below]) * frac
        carrier += gain * (rotor.imag * np.cos(offsets[k]) + rotor.real * np.sin(offsets[k]))

    hiss = np.diff(rng.standard_normal(n + 1)) / np.sqrt(2.0)  # first difference: a high-tilted noise
    room = rng.standard_normal(n)
    audio = LEVEL * (envelope * carrier + fricative_env * hiss) + NOISE_FLOOR * room
    return Speech(
        audio=np.clip(audio, -1.0, 1.0).astype(np.float32),
        envelope=envelope.astype(np.float32),
        rate=rate,
    )


def frame_rms(signal: np.ndarray, rate: int, fps: int, num_frames: int) -> np.ndarray:
    """RMS of `signal` over each video frame's span of samples (frame i covers [i/fps, (i+1)/fps))."""
    hop = rate // fps
    padded = np.zeros(num_frames * hop, dtype=np.float64)
    usable = min(len(signal), len(padded))
    padded[:usable] = signal[:usable]
    return np.sqrt((padded.reshape(num_frames, hop) ** 2).mean(axis=1))
