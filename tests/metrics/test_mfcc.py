"""The MFCC front end, property by property against python_speech_features' documented recipe."""

from __future__ import annotations

import numpy as np
import pytest

from dualforce_core.errors import UserError
from dualforce_core.metrics.mfcc import mel_filterbank, mfcc, num_frames, to_pcm16


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def test_frame_count_is_100_hz_with_the_last_partial_frame_padded() -> None:
    assert mfcc(speech_like(1.0)).shape == (99, 13)  # 1 + ceil((16000 − 400) / 160)
    assert num_frames(16001) == 99
    assert num_frames(16081) == 100
    assert num_frames(10) == 1
    assert mfcc(np.zeros(10, np.float32)).shape == (1, 13)


def test_coefficient_zero_is_the_log_power_of_the_preemphasised_pcm_frame() -> None:
    audio = speech_like(0.5)
    pcm = to_pcm16(audio)
    emphasised = np.concatenate([[pcm[0]], pcm[1:] - 0.97 * pcm[:-1]])
    features = mfcc(audio)
    for k in (0, 7, 30):
        frame = emphasised[k * 160 : k * 160 + 400]
        energy = np.sum(np.abs(np.fft.rfft(frame, 512)) ** 2) / 512
        assert features[k, 0] == pytest.approx(np.log(energy), rel=1e-12)


def test_cepstra_are_liftered_orthonormal_dct_of_log_mel_energies() -> None:
    audio = speech_like(0.3, seed=1)
    pcm = to_pcm16(audio)
    emphasised = np.concatenate([[pcm[0]], pcm[1:] - 0.97 * pcm[:-1]])
    frame = emphasised[5 * 160 : 5 * 160 + 400]
    log_banks = np.log((np.abs(np.fft.rfft(frame, 512)) ** 2 / 512) @ mel_filterbank().T)
    n = np.arange(26)
    for k in range(1, 13):
        dct_k = np.sqrt(2 / 26) * np.sum(log_banks * np.cos(np.pi * k * (2 * n + 1) / 52))
        assert mfcc(audio)[5, k] == pytest.approx(dct_k * (1 + 11 * np.sin(np.pi * k / 22)), rel=1e-9)


def test_silence_has_flat_cepstra_and_eps_energy() -> None:
    features = mfcc(np.zeros(1600, np.float32))
    np.testing.assert_allclose(features[:, 1:], 0.0, atol=1e-9)
    np.testing.assert_allclose(features[:, 0], np.log(np.finfo(np.float64).eps))


def test_filterbank_triangles_peak_at_one_and_a_tone_lands_in_its_band() -> None:
    bank = mel_filterbank()
    assert bank.shape == (26, 257)
    assert bank.min() >= 0.0
    np.testing.assert_allclose(bank.max(axis=1), 1.0)
    peak_bins = bank.argmax(axis=1)
    assert np.all(np.diff(peak_bins) > 0)  # centres rise with frequency
    tone_bin = round(1000 * 512 / 16000)  # a 1 kHz tone sits in FFT bin 32
    assert bank[:, tone_bin].argmax() == np.abs(peak_bins - tone_bin).argmin()


def test_float_audio_is_read_as_16_bit_pcm_values() -> None:
    np.testing.assert_array_equal(
        to_pcm16(np.array([0.0, 0.5, -1.0, 1.0])), [0.0, 16384.0, -32768.0, 32767.0]
    )


def test_non_mono_audio_is_a_user_error() -> None:
    with pytest.raises(UserError, match="mono"):
        mfcc(np.zeros((2, 1600), np.float32))
