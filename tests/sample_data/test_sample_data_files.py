"""The generated mp4s are real, well-formed talking-face clips whose ground truth matches what is in them."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.sample_data import flame_params, generate_dataset
from dualforce_core.sample_data.speech import frame_rms

CLIPS, SECONDS, SIZE = 4, 3.0, 128


def _decode(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        info = {
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "rate": video.average_rate,
            "audio_rate": audio.rate,
            "channels": audio.codec_context.channels,
        }
        frames, pts = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            assert frame.pts is not None and frame.time_base is not None
            pts.append(frame.pts * frame.time_base)
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return {**info, "frames": np.stack(frames), "pts": pts, "audio": samples}


def _sidecar(mp4: Path) -> dict[str, Any]:
    return json.loads(mp4.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("synthetic")
    return out, generate_dataset(out, clips=CLIPS, seed=7, seconds=SECONDS, size=SIZE)


@pytest.fixture(scope="module")
def decoded(dataset: tuple[Path, list[Path]]) -> list[dict[str, Any]]:
    return [_decode(path) for path in dataset[1]]


def test_files_hold_h264_yuv420p_at_constant_25_fps_and_mono_aac(decoded: list[dict[str, Any]]) -> None:
    for clip in decoded:
        assert (clip["video_codec"], clip["audio_codec"], clip["pix_fmt"]) == ("h264", "aac", "yuv420p")
        assert clip["rate"] == 25
        assert set(np.diff(np.asarray(clip["pts"]))) == {Fraction(1, 25)}
        assert (clip["audio_rate"], clip["channels"]) == (16000, 1)
        assert clip["frames"].shape[1:] == (SIZE, SIZE, 3)


def test_durations_are_as_asked_and_audio_matches_video(
    dataset: tuple[Path, list[Path]], decoded: list[dict[str, Any]]
) -> None:
    for path, clip in zip(dataset[1], decoded, strict=True):
        truth = _sidecar(path)
        assert len(clip["frames"]) == truth["num_frames"] == round(SECONDS * 25)
        video_seconds = len(clip["frames"]) / 25
        audio_seconds = len(clip["audio"]) / clip["audio_rate"]
        priming = 1024 / clip["audio_rate"]
        assert abs(video_seconds - SECONDS) < 1e-9
        assert abs(audio_seconds - video_seconds) <= 0.04 + priming


def test_mouth_opening_follows_its_own_audio_and_not_another_clips(
    dataset: tuple[Path, list[Path]], decoded: list[dict[str, Any]]
) -> None:
    mouths = [np.asarray(_sidecar(path)["mouth_open"]) for path in dataset[1]]
    loudness = [frame_rms(clip["audio"], clip["audio_rate"], 25, len(clip["frames"])) for clip in decoded]
    corr = np.array([[np.corrcoef(m, a)[0, 1] for a in loudness] for m in mouths])
    matched = np.diag(corr)
    others = corr[~np.eye(CLIPS, dtype=bool)].reshape(CLIPS, CLIPS - 1)
    assert np.all(matched > 0.8), matched
    assert np.all(np.abs(others).mean(axis=1) < 0.3), others
    assert np.all(matched > np.abs(others).max(axis=1))


def test_clips_share_identities_and_identities_look_different(
    dataset: tuple[Path, list[Path]], decoded: list[dict[str, Any]]
) -> None:
    identities = [_sidecar(path)["identity"] for path in dataset[1]]
    assert identities == [0, 1, 0, 1]  # default K = max(2, clips // 2), clip i is identity i % K

    def face_colour(frames: np.ndarray) -> np.ndarray:
        centre = frames[:, SIZE * 3 // 8 : SIZE * 5 // 8, SIZE * 3 // 8 : SIZE * 5 // 8]
        return np.median(centre.reshape(-1, 3), axis=0).astype(float)

    colours = [face_colour(clip["frames"]) for clip in decoded]
    same = max(np.abs(colours[0] - colours[2]).max(), np.abs(colours[1] - colours[3]).max())
    different = np.abs(colours[0] - colours[1]).max()
    assert same < 12, colours
    assert different > 3 * same + 10, colours


def test_metadata_lists_every_clip_and_sidecars_hold_the_ground_truth(
    dataset: tuple[Path, list[Path]],
) -> None:
    out, paths = dataset
    metadata = json.loads((out / "metadata.json").read_text())
    assert [entry["video_path"] for entry in metadata] == [f"videos/{p.name}" for p in paths]
    assert all((out / entry["video_path"]).is_file() and entry["caption"] for entry in metadata)
    for path in paths:
        truth = _sidecar(path)
        frames = truth["num_frames"]
        assert (truth["fps"], truth["audio_rate"], truth["seed"]) == (25, 16000, 7)
        for key in ("mouth_open", "yaw", "pitch", "roll", "blink"):
            assert len(truth[key]) == frames, key
        assert np.ptp(truth["mouth_open"]) > 0.5 and np.ptp(truth["yaw"]) > 2.0
        flame = np.asarray(truth["flame"])
        assert flame.shape == (frames, FLAME_DIM)
        tracks = [np.asarray(truth[k]) for k in ("mouth_open", "blink", "yaw", "pitch", "roll")]
        np.testing.assert_allclose(flame, flame_params(*tracks), atol=1e-4)


def test_same_seed_repeats_exactly_and_another_seed_differs(tmp_path: Path) -> None:
    def run(name: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        (path,) = generate_dataset(tmp_path / name, clips=1, seed=seed, seconds=1.0, size=64)
        return _sidecar(path), _decode(path)

    (truth_a, clip_a), (truth_b, clip_b), (truth_c, clip_c) = run("a", 3), run("b", 3), run("c", 4)
    assert truth_a == truth_b
    np.testing.assert_array_equal(clip_a["audio"], clip_b["audio"])
    assert np.abs(clip_a["frames"].astype(int) - clip_b["frames"].astype(int)).max() <= 2
    assert truth_a["mouth_open"] != truth_c["mouth_open"] and truth_a["yaw"] != truth_c["yaw"]
    assert not np.allclose(clip_a["audio"], clip_c["audio"])


def test_48_khz_audio_stays_in_sync(tmp_path: Path) -> None:
    paths = generate_dataset(tmp_path, clips=2, seed=1, seconds=2.0, size=64, audio_rate=48000, identities=1)
    for path in paths:
        clip, truth = _decode(path), _sidecar(path)
        assert (clip["audio_rate"], truth["audio_rate"], truth["identity"]) == (48000, 48000, 0)
        assert abs(len(clip["audio"]) / 48000 - 2.0) <= 0.04 + 1024 / 48000
        loudness = frame_rms(clip["audio"], 48000, 25, truth["num_frames"])
        assert np.corrcoef(truth["mouth_open"], loudness)[0, 1] > 0.8
