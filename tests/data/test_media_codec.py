"""Clip blobs keep every frame (lossless: bit-exact), and the streaming decode lands on the 25 fps grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from dualforce_core.curation import corpus
from dualforce_core.data import media
from dualforce_core.data.config import DataConfig, VideoCodec
from dualforce_core.data.crop import center_box, expand_square
from dualforce_core.errors import UserError
from tests.data.ingest_fixtures import frame_at, write_video


@pytest.fixture(scope="module")
def photo_crops() -> np.ndarray:
    """13 256-px crops of a real photograph (opencv-doc portrait A) under a slow pan: real image content."""
    try:
        corpus.check_media()
    except UserError as err:
        pytest.fail(f"{err} (make system-deps installs the real test media)")
    photo = corpus.load_image("A")
    side = min(photo.shape[:2]) * 0.8
    return np.stack(
        [media.to_square(photo, (4.0 * i, 3.0 * i, 4.0 * i + side, 3.0 * i + side), 256) for i in range(13)]
    )


def test_lossless_blob_decodes_to_the_exact_crops(photo_crops: np.ndarray) -> None:
    decoded = media.decode_video(media.encode_video(photo_crops, 25))
    assert decoded.shape == photo_crops.shape
    np.testing.assert_array_equal(decoded, photo_crops)


def test_h264_blob_is_close_but_not_exact(photo_crops: np.ndarray) -> None:
    decoded = media.decode_video(media.encode_video(photo_crops, 25, crf=18, codec="h264"))
    assert decoded.shape == photo_crops.shape
    error = np.abs(decoded.astype(int) - photo_crops)
    assert error.max() > 0 and error.mean() < 3


@pytest.mark.parametrize("codec", ["lossless", "h264"])
@pytest.mark.parametrize("count", [1, 13, 49])
def test_video_blob_returns_every_frame(codec: VideoCodec, count: int) -> None:
    frames = np.stack([frame_at(i, 48, 32) for i in range(count)])
    assert media.decode_video(media.encode_video(frames, 25, codec=codec)).shape == frames.shape


def test_a_bad_codec_names_the_key() -> None:
    with pytest.raises(ValidationError, match="video_codec"):
        DataConfig(video_codec="vp9")
    with pytest.raises(ValueError, match="codec must be lossless or h264"):
        media.encode_video(np.zeros((1, 16, 16, 3), np.uint8), 25, codec="vp9")  # type: ignore[arg-type]


def test_audio_blob_is_lossless_at_16_bit() -> None:
    samples = (0.5 * np.sin(np.arange(5760) / 7)).astype(np.float32)
    decoded, rate = media.decode_audio(media.encode_audio(samples, 16000))
    assert rate == 16000 and decoded.shape == samples.shape
    assert np.abs(decoded - samples).max() <= 1 / 32768


@pytest.mark.parametrize(("frames", "fps"), [(40, 25), (45, 30), (30, 50), (20, 12)])
def test_resampling_fills_the_25_fps_grid(tmp_path: Path, frames: int, fps: int) -> None:
    path = write_video(tmp_path / "v.mp4", frames, fps=fps, audio=False)
    out = [index for index, _ in media.resample_frames(media.decode_frames(path), 25)]
    assert out == list(range(math.ceil(frames / fps * 25 - 1e-6)))


def test_probe_flags_irregular_timestamps(tmp_path: Path) -> None:
    times = [sum(0.03 if i % 2 else 0.05 for i in range(k)) for k in range(30)]
    assert media.probe(write_video(tmp_path / "vfr.mp4", 30, frame_times=times)).variable_rate
    steady = media.probe(write_video(tmp_path / "cfr.mp4", 30, fps=30))
    assert not steady.variable_rate and steady.native_fps == pytest.approx(30, rel=0.01)
    assert steady.frame_count == 30 and steady.has_audio


def test_letterbox_keeps_the_whole_frame() -> None:
    wide = np.full((64, 96, 3), 200, np.uint8)
    square = media.to_square(wide, None, 48)
    assert square.shape == (48, 48, 3)
    assert square[0].max() == 0 and square[-1].max() == 0 and square[24].min() == 200


def test_face_box_is_square_and_inside_the_frame() -> None:
    assert center_box(96, 64) == (16.0, 0.0, 80.0, 64.0)
    x0, y0, x1, y1 = expand_square((80, 2, 100, 22), 2.0, 120, 100)
    assert x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(40)
    assert x0 >= 0 and x1 <= 120 and y0 >= 0 and y1 <= 100
    assert expand_square((0, 0, 90, 90), 3.0, 120, 100) == (0.0, 0.0, 100.0, 100.0)
