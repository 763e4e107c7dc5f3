from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core.config import ConfigError, flatten, load_config
from dualforce_core.config.loader import config_dir


def test_defaults_load_without_a_file() -> None:
    config = load_config()
    assert config.data.fps == 25
    assert config.data.clip_frames % 4 == 1


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_model_presets_come_from_yaml(preset: str) -> None:
    config = load_config(None, [f"model.preset={preset}"])
    assert config.model.preset == preset
    assert config.model.video_dim % config.model.video_heads == 0


def test_base_preset_matches_design_table() -> None:
    model = load_config(None, ["model.preset=base"]).model
    assert (model.video_layers, model.video_dim, model.video_heads, model.video_ffn_dim) == (
        20,
        1536,
        12,
        8960,
    )
    assert (model.struct_layers, model.struct_dim) == (20, 1536)


def test_file_extends_and_overrides_win(tmp_path: Path) -> None:
    parent = tmp_path / "parent.yaml"
    parent.write_text("train:\n  lr: 0.5\n  batch_size: 4\nmodel:\n  preset: tiny\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: parent.yaml\ntrain:\n  lr: 0.25\nmodel:\n  video_layers: 3\n")
    config = load_config(child, ["train.batch_size=8"])
    assert config.train.lr == 0.25
    assert config.train.batch_size == 8
    assert config.model.preset == "tiny"
    assert config.model.video_layers == 3
    assert config.model.video_dim == 64  # from the tiny preset


def test_unknown_key_in_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.learning_rate'"):
        load_config(path)


def test_unknown_override_suggests_the_closest_key() -> None:
    with pytest.raises(ConfigError, match=r"'train.lrr'.*did you mean lr"):
        load_config(None, ["train.lrr=1e-4"])


def test_bad_value_is_explained() -> None:
    with pytest.raises(ConfigError, match="clip_frames"):
        load_config(None, ["data.clip_frames=48"])


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="known presets: base, small, tiny"):
        load_config(None, ["model.preset=huge"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_every_shipped_config_file_loads() -> None:
    files = sorted(config_dir().rglob("*.yaml"))
    assert files
    for path in files:
        if path.parent.name == "model":
            load_config(None, [f"model.preset={path.stem}"])
        elif path.parent.name != "accelerate":
            load_config(path)


def test_flatten_gives_dotted_keys() -> None:
    flat = flatten(load_config(None, ["train.lr=0.001"]))
    assert flat["train.lr"] == 0.001
    assert flat["train.loss_weights.video"] == 1.0
