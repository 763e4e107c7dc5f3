from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import HubertModel

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.audio import (
    extract_audio_features,
    hubert_features,
    load_hubert,
    normalize_waveform,
)
from dualforce_core.weights import WeightsRegistry
from tests.features.feature_fixtures import MakeClips


def test_stand_in_loads_through_from_pretrained_with_the_tiny_preset_shape(weights_root: Path) -> None:
    model_dir = WeightsRegistry(weights_root).path("hubert")
    assert (model_dir / "model.safetensors").is_file()
    model, normalize = load_hubert(model_dir)
    assert isinstance(model, HubertModel) and normalize
    # configs/model/tiny.yaml: audio_layers 3, audio_dim 32
    assert model.config.num_hidden_layers + 1 == 3 and model.config.hidden_size == 32


@pytest.mark.parametrize("num_frames", [5, 9])
def test_features_have_two_tokens_per_video_frame(weights_root: Path, num_frames: int) -> None:
    model, normalize = load_hubert(WeightsRegistry(weights_root).path("hubert"))
    waves = np.random.default_rng(0).normal(0, 0.1, (2, num_frames * 640)).astype(np.float32)
    features = hubert_features(model, waves, num_frames, normalize)
    assert features.shape == (2, 2 * num_frames, 3, 32)
    # the conv front end yields 2T - 1 tokens; the last one is repeated to reach 2T
    raw = model(torch.from_numpy(np.stack([normalize_waveform(w) for w in waves])), output_hidden_states=True)
    assert raw.hidden_states[-1].shape[1] == 2 * num_frames - 1
    assert torch.allclose(features[:, : 2 * num_frames - 1, -1], raw.hidden_states[-1].detach())
    assert torch.equal(features[:, -1], features[:, -2])


def test_normalisation_follows_the_feature_extractor_rule(weights_root: Path) -> None:
    model, _ = load_hubert(WeightsRegistry(weights_root).path("hubert"))
    wave = np.random.default_rng(1).normal(0.3, 0.05, (1, 5 * 640)).astype(np.float32)
    normed = normalize_waveform(wave[0])
    assert abs(normed.mean()) < 1e-5 and abs(normed.std() - 1) < 1e-3
    scaled = hubert_features(model, wave * 4 + 1, 5, normalize=True)
    assert torch.allclose(hubert_features(model, wave, 5, normalize=True), scaled, atol=1e-4)
    assert not torch.allclose(hubert_features(model, wave, 5, normalize=False), scaled, atol=1e-2)


def test_layer_selection_and_bad_layers(weights_root: Path) -> None:
    model, normalize = load_hubert(WeightsRegistry(weights_root).path("hubert"))
    wave = np.zeros((1, 5 * 640), np.float32)
    assert hubert_features(model, wave, 5, normalize, layers=[0, -1]).shape == (1, 10, 2, 32)
    with pytest.raises(UserError, match="out of range"):
        hubert_features(model, wave, 5, normalize, layers=[7])


def test_extraction_writes_fp16_rows_per_clip(config: DualForceConfig, make_clips: MakeClips) -> None:
    ids = make_clips("talk", 3, num_frames=9)
    report = extract_audio_features("talk", config, progress=False)
    assert (report.written, report.skipped, report.total) == (3, 0, 3)
    rows = read_rows("audio_features").to_pylist()
    assert sorted(r["clip_id"] for r in rows) == ids
    for row in rows:
        assert row["shape"] == [18, 3, 32] and row["dtype"] == "float16"
        assert (row["num_layers"], row["dim"]) == (3, 32)
        assert row["extractor_id"] == report.extractor_id
        features = decode_tensor(row["features"], row["shape"], row["dtype"])
        assert torch.isfinite(features).all() and features.abs().sum() > 0
