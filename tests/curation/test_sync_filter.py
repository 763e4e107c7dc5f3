"""The SyncNet filter's rule (`curation.sync_filter`): a clip's verdict from its windows' distances, the sign
of the offset → audio shift through the real `syncnet_distances`, and its crop being the eval's aligned one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from dualforce_core.curation import AlignConfig, CurationConfig, align_crop, curation_fingerprint
from dualforce_core.curation.config import SyncFilterConfig
from dualforce_core.curation.sync_filter import REASONS, judge, syncnet_crops
from dualforce_core.evaluation.config import SYNC_ALIGN
from dualforce_core.metrics.crops import aligned_face_crops
from dualforce_core.metrics.syncnet import MFCC_STEPS_PER_FRAME, SyncNet, syncnet_distances
from dualforce_core.timeline import SAMPLES_PER_FRAME

WINDOW, STRIDE = 9, 8  # clip_frames, clip_stride of the ingest tests


class FrameCodeNet(SyncNet):
    """Lips embed as each frame's brightness, audio as each frame's loudness (the energy of its first MFCC
    step, which lies inside the frame), both ±0.5: in sync they are equal, and the zero vector that
    syncnet_distances pads the audio with is as far as a random pairing."""

    def forward_lip(self, frame_windows: torch.Tensor) -> torch.Tensor:
        return frame_windows.mean(dim=(1, 3, 4)) / 255.0 - 0.5  # [B, 5]

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        energy = mfcc_windows[:, 0, 0, ::MFCC_STEPS_PER_FRAME]  # [B, 5]
        return (energy > 19.0).float() - 0.5


def _distances(scores: dict[int, float], windows: int, k: int = 15) -> np.ndarray:
    """[2k+1, windows] distances whose mean over windows is 10 except at the offsets given."""
    dists = np.full((2 * k + 1, windows), 10.0)
    for offset, value in scores.items():
        dists[offset + k] = value
    return dists


@pytest.mark.parametrize("lag", [2, -3])
def test_a_clip_offset_moves_its_audio_to_the_lips(lag: int) -> None:
    """Lips that show each sound `lag` frames late (syncnet_python: offset +lag) get the audio that starts
    `lag` frames earlier in the source: after the shift, every frame's loudness matches its lips."""
    frames, k = 41, 4
    pattern = np.random.default_rng(5).integers(0, 2, frames + 20)
    lips = np.array([pattern[i - lag + 10] for i in range(frames)])  # source frame i sounds pattern[i + 10]
    video = np.repeat(lips * 255, 224 * 224 * 3).astype(np.uint8).reshape(frames, 224, 224, 3)
    noise = np.random.default_rng(6).normal(size=(frames + 20) * SAMPLES_PER_FRAME)
    loud = np.repeat(np.where(pattern == 1, 0.5, 0.001), SAMPLES_PER_FRAME)
    source = (noise * loud).astype(np.float32)  # source frame i's sound: pattern[i + 10]
    with torch.device("meta"):  # its parameters are never used
        net = FrameCodeNet()

    def audio(start: int) -> np.ndarray:  # a window's audio from source frame `start`, as ingest cuts it
        first = (start + 10) * SAMPLES_PER_FRAME
        return source[first : first + WINDOW * SAMPLES_PER_FRAME]

    starts = range(0, frames - WINDOW + 1, STRIDE)
    distances = [syncnet_distances(net, video[s : s + WINDOW], audio(s), k) for s in starts]
    verdict = judge(distances, SyncFilterConfig(min_confidence=0.0, max_offset=k, search_offset=k))
    assert verdict.offset == lag and not verdict.reason
    assert verdict.windows == len(starts) * (WINDOW - 5) and verdict.confidence > 0.05
    for start in starts:
        shifted = audio(verdict.audio_start(start)).reshape(WINDOW, SAMPLES_PER_FRAME)
        heard = (np.abs(shifted).mean(axis=1) > 0.1).astype(int)
        np.testing.assert_array_equal(heard, lips[start : start + WINDOW])


def test_a_clip_is_scored_over_all_its_windows() -> None:
    """The windows' distance matrices are concatenated: offset and confidence are those of their mean."""
    first = _distances({2: 4.0}, 4)
    second = _distances({-1: 2.0}, 12)  # three times the windows: its offset wins
    verdict = judge([first, second], SyncFilterConfig(min_confidence=0.0))
    assert verdict.offset == -1 and verdict.windows == 16
    assert verdict.distance == pytest.approx((10 * 4 + 2 * 12) / 16)
    assert verdict.confidence == pytest.approx(10 - verdict.distance)


def test_low_confidence_is_rejected_before_a_large_offset() -> None:
    dists = [_distances({7: 8.0}, 5)]  # offset +7, confidence 2
    low = judge(dists, SyncFilterConfig())
    assert (low.reason, low.value, low.offset) == ("low_sync", pytest.approx(2.0), 7)
    assert "min_confidence=3.0" in low.detail
    off = judge(dists, SyncFilterConfig(min_confidence=1.5))
    assert (off.reason, off.value) == ("av_offset", 7.0) and "max_offset=6" in off.detail
    kept = judge(dists, SyncFilterConfig(min_confidence=1.5, max_offset=7))
    assert kept.reason == "" and kept.audio_start(100) == 93
    assert set(REASONS) == {"low_sync", "av_offset"}


def test_syncnet_crop_is_the_eval_aligned_crop() -> None:
    """One crop code: the filter's SyncNet input is `align_crop` of each frame on its landmarks, exactly
    what `eval.sync_crop=aligned` (`aligned_face_crops`, no smoothing) makes from the same landmarks."""
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    face = rng.uniform(20, 44, (68, 2))
    landmarks = np.stack([face + shift for shift in (0.0, 1.5, -2.0)])
    align = SyncFilterConfig().align
    ours = syncnet_crops(crops, landmarks, align)
    assert ours.shape == (3, 224, 224, 3) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours[1], align_crop(crops[1], landmarks[1], 224, align)[0])
    order = iter(landmarks)
    theirs = aligned_face_crops(crops, 224, align, lambda _frame: next(order))
    assert theirs is not None
    np.testing.assert_array_equal(ours, theirs.crops)


def test_settings_defaults_validation_and_fingerprint() -> None:
    config = SyncFilterConfig()
    assert (config.enabled, config.min_confidence, config.max_offset, config.search_offset) == (
        True,
        3.0,
        6,
        15,
    )
    assert config.align == SYNC_ALIGN and config.align != AlignConfig()  # the eval's SyncNet framing
    with pytest.raises(ValidationError, match="beyond the offsets searched"):
        SyncFilterConfig(max_offset=16)
    base = CurationConfig()
    assert CurationConfig().sync == config
    stricter = CurationConfig(sync=SyncFilterConfig(min_confidence=4.0))
    assert curation_fingerprint(stricter) != curation_fingerprint(base)
