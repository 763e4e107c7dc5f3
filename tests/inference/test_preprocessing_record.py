"""A trained checkpoint carries its preprocessing; inference normalises exactly as training did."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dualforce_core.config import DualForceConfig, config_dir, load_config
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.media import decode_video
from dualforce_core.data.training_dataset import TrainingDataset
from dualforce_core.errors import UserError
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.struct import extract_struct_features
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.models import DualForceModel
from dualforce_core.preprocessing import PREPROCESSING_FILE, Preprocessing
from dualforce_core.training.trainer import train
from dualforce_core.weights import init_random
from tests.features.feature_fixtures import clip_writer

SIZE = 32


def _sidecar(path: Path, frames: int) -> None:
    """Ground-truth tracks that move, so every structure dimension the sidecar fills varies."""
    t = np.arange(frames) / 25.0
    tracks = {
        "mouth_open": (0.5 + 0.5 * np.sin(7 * t)).tolist(),
        "yaw": (10 * np.sin(t)).tolist(),
        "pitch": (5 * np.cos(2 * t)).tolist(),
        "roll": (3 * np.sin(3 * t)).tolist(),
        "blink": (0.5 + 0.5 * np.cos(5 * t)).tolist(),
    }
    path.write_text(json.dumps({"fps": 25, "num_frames": frames, **tracks}))


def _trained(tmp_path: Path, struct_extractor: str) -> tuple[Path, DualForceConfig]:
    init_random(tmp_path / "weights", ("wan_vae", "hubert", "liveportrait_motion"), seed=0)
    sidecar = tmp_path / "clip.json"
    _sidecar(sidecar, 60)
    clip_writer(tmp_path)("ds", 3, num_frames=9, size=SIZE, sidecar=sidecar)
    config = load_config(
        str(config_dir() / "train" / "tiny.yaml"),
        [
            f"weights.root={tmp_path / 'weights'}",
            f"data.struct_extractor={struct_extractor}",
            "train.max_steps=1",
            "train.mlflow=false",
            "train.split=all",
        ],
    )
    for extract in (extract_video_latents, extract_struct_features, extract_audio_features):
        extract("ds", config, progress=False)
    result = train(config, "ds", tmp_path / "run")
    assert result.final_dir is not None
    return result.final_dir, config


def _training_reference(config: DualForceConfig) -> tuple[torch.Tensor, np.ndarray, str]:
    """What training fed the model as frame 0 of the first clip, that clip's first frame, and its id."""
    data = TrainingDataset("ds", config.model)
    item = data[0]
    row = read_rows("clips", ["video"], f"clip_id = '{item['clip_id']}'").to_pylist()[0]
    return item["struct"][0], decode_video(row["video"])[0], item["clip_id"]


@pytest.mark.slow
def test_liveportrait_reference_structure_is_normalised_as_in_training(tmp_path: Path) -> None:
    checkpoint, config = _trained(tmp_path, "liveportrait")
    trained_struct, first_frame, _ = _training_reference(config)
    record = Preprocessing.load(checkpoint)
    generator = StreamingGenerator.from_config(
        config, DualForceModel.from_pretrained(checkpoint), preprocessing=record
    )
    inferred = generator.prepare(first_frame).struct[0, 0]
    # Dimensions the random extractor leaves (nearly) constant are divided by a floored std: a float32
    # round-off of the motion there becomes O(1) after normalisation, so compare where std is real.
    std = torch.tensor(record.struct.std, dtype=torch.float32)
    varying = generator.model.projector.pack((std > 1e-3).float()[None, None])[0, 0] > 0.5
    assert varying.sum() > 10
    # fp32 LivePortrait on the same frame in a batch of 1 vs 9 (different conv blocking), then / std.
    torch.testing.assert_close(inferred[varying], trained_struct[varying], atol=1e-3, rtol=1e-3)


@pytest.mark.slow
def test_sidecar_reference_motion_is_normalised_as_in_training(tmp_path: Path) -> None:
    checkpoint, config = _trained(tmp_path, "sidecar")
    trained_struct, first_frame, clip_id = _training_reference(config)
    record = Preprocessing.load(checkpoint)
    assert record.struct.uses_sidecar and record.size == SIZE
    generator = StreamingGenerator.from_config(
        config, DualForceModel.from_pretrained(checkpoint), preprocessing=record
    )
    assert generator.motion_extractor is None  # a sidecar-trained model never sees LivePortrait's space
    rows = read_rows("struct_features", ["motion"], f"clip_id = '{clip_id}'").to_pylist()
    motion = np.frombuffer(rows[0]["motion"], np.float32).reshape(-1, 70)[:1]
    inferred = generator.prepare(first_frame, reference_motion=motion).struct[0, 0]
    # Same raw numbers; training normalises in float32, inference in float64 then rounds: a few ulps
    # of values up to ~3 in magnitude.
    torch.testing.assert_close(inferred, trained_struct, atol=1e-5, rtol=1e-5)
    # Without a known motion the reference is the training mean: zero after normalisation.
    assert torch.count_nonzero(generator.prepare(first_frame).struct) == 0


@pytest.mark.slow
def test_moved_checkpoint_generates_the_same_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint, config = _trained(tmp_path, "liveportrait")
    portrait = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    audio = np.random.default_rng(1).normal(0, 0.1, 16000).astype(np.float32)

    def video(ckpt: Path, cfg: DualForceConfig) -> np.ndarray:
        model = DualForceModel.from_pretrained(ckpt).eval()
        generator = StreamingGenerator.from_config(cfg, model, preprocessing=Preprocessing.load(ckpt))
        return np.concatenate([c.frames for c in generator.stream(portrait, [audio])])

    here = video(checkpoint, config)
    moved = tmp_path / "elsewhere" / "final"
    shutil.copytree(checkpoint, moved)
    monkeypatch.setenv("DUALFORCE_HOME", str(tmp_path / "another_home"))  # no stats, no tables there
    other = load_config(None, [f"weights.root={tmp_path / 'weights'}"])  # default data.size = 256
    there = video(moved, other)
    assert here.shape == there.shape == (25, SIZE, SIZE, 3)
    np.testing.assert_array_equal(here, there)  # same weights, same inputs, same process: bit-identical


def test_checkpoint_without_its_record_is_refused(tmp_path: Path) -> None:
    model = DualForceModel.from_preset("tiny")
    model.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(UserError, match=f"no {PREPROCESSING_FILE}"):
        Preprocessing.load(tmp_path / "ckpt")
    (tmp_path / "ckpt" / PREPROCESSING_FILE).write_text('{"format_version": 1, "size": "big"}')
    with pytest.raises(UserError, match="not a valid preprocessing record"):
        Preprocessing.load(tmp_path / "ckpt")
    (tmp_path / "ckpt" / PREPROCESSING_FILE).unlink()
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dualforce_core.cli.main",
            "generate",
            "--checkpoint",
            str(tmp_path / "ckpt"),
            "--image",
            str(image),
            "--audio",
            str(image),
            "--out",
            str(tmp_path / "o.mp4"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert PREPROCESSING_FILE in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("dualforce generate: error:") == 1
