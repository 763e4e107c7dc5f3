"""The loader and trainer on tables written by the real extractors (random stand-in networks)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dualforce_core.config import config_dir, load_config
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.flame import extract_flame_params
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.struct import extract_struct_features
from dualforce_core.training.trainer import train
from dualforce_core.weights import init_random
from tests.features.feature_fixtures import FEATURE_WEIGHTS, clip_writer, write_sidecar


@pytest.mark.slow
def test_extract_then_train_tiny(tmp_path: Path) -> None:
    init_random(tmp_path / "weights", FEATURE_WEIGHTS, seed=0)
    sidecar = tmp_path / "clip.json"
    write_sidecar(sidecar, 40)
    clip_writer(tmp_path)("ds", 3, num_frames=9, size=32, sidecar=sidecar)
    config = load_config(
        str(config_dir() / "train" / "tiny.yaml"),
        [f"weights.root={tmp_path / 'weights'}", "train.max_steps=2", "train.mlflow=false"],
    )
    for extract in (extract_video_latents, extract_struct_features, extract_audio_features):
        extract("ds", config, progress=False)
    extract_flame_params("ds", config, progress=False)
    result = train(config, "ds", tmp_path / "run")
    assert result.step == 2 and set(result.lance_versions) == {
        "video_latents",
        "struct_features",
        "audio_features",
        "flame_params",
    }
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    assert all(math.isfinite(row["train/loss"]) and row["train/flame"] > 0 for row in rows)
