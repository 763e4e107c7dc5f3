"""The `lora` section: defaults as MOVA, groups resolved to our module names, the shipped configs valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualforce_core.config import DualForceConfig
from dualforce_core.config.loader import config_dir, read_config_file
from dualforce_core.lora.adapter import adapter_num_bytes, apply_lora, lora_layers, trainable_parameter_count
from dualforce_core.lora.config import DEFAULT_TARGETS, TARGET_GROUPS, LoraConfig, group_of, target_pattern
from dualforce_core.models import DualForceModel
from tests.lora.lora_fixtures import trained_like_base


def test_defaults_follow_mova() -> None:
    config = LoraConfig()
    assert (config.rank, config.alpha, config.dropout, config.enabled) == (16, 16.0, 0.0, False)
    assert config.targets == list(DEFAULT_TARGETS) == ["self_attn", "bridge", "audio_attn"]


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (
            "self_attn",
            {f"{t}.blocks.{i}.self_attn.{p}" for t in ("video", "struct") for i in (0, 1) for p in "qkvo"},
        ),
        (
            "audio_attn",
            {f"{t}.blocks.{i}.audio_attn.{p}" for t in ("video", "struct") for i in (0, 1) for p in "qkvo"},
        ),
        ("bridge", {f"bridge.0.{d}.attn.{p}" for d in ("v_from_s", "s_from_v") for p in "qkvo"}),
        ("ffn", {f"{t}.blocks.{i}.ffn.{j}" for t in ("video", "struct") for i in (0, 1) for j in (0, 2)}),
    ],
)
def test_each_group_adapts_exactly_its_layers(group: str, expected: set[str]) -> None:
    model = apply_lora(trained_like_base(), LoraConfig(rank=2, targets=[group]))
    assert {name for name, _ in lora_layers(model)} == expected
    assert all(group_of(name) == group for name in expected)


def test_groups_never_hit_embeddings_heads_or_modulation() -> None:
    pattern = target_pattern(list(TARGET_GROUPS))
    for name in (
        "video.proj_v",
        "video.time_v.linear_1",
        "video.audio_in.linear_1",
        "video.proj_out",
        "struct_embedding",
    ):
        assert not re.fullmatch(pattern, name)


def test_text_attention_group_on_a_model_with_text() -> None:
    model = DualForceModel.from_preset("tiny", text_dim=32)
    apply_lora(model, LoraConfig(rank=2, targets=["text_attn"]))
    assert {name for name, _ in lora_layers(model)} == {
        f"video.blocks.{i}.text_attn.{p}" for i in (0, 1) for p in "qkvo"
    }


@pytest.mark.parametrize(("name", "preset", "rank"), [("lora_tiny", "tiny", 4), ("lora_base", "base", 16)])
def test_shipped_configs(name: str, preset: str, rank: int) -> None:
    """Valid as a whole once `lora` is a section of DualForceConfig (as the lead will hook it)."""

    class WithLora(DualForceConfig):
        lora: LoraConfig = LoraConfig()

    data = read_config_file(config_dir() / "train" / f"{name}.yaml")
    lora = WithLora.model_validate(data).lora
    assert lora.enabled and lora.rank == rank
    assert data["model"]["preset"] == preset
    assert Path(config_dir() / "train" / f"{preset}.yaml").is_file()


def test_base_preset_adapter_size_on_the_meta_device() -> None:
    """MOVA's recipe on the paper-scale model: under 1% of the parameters train (counted, never built)."""
    model = DualForceModel.from_preset("base", device="meta")
    base = model.num_parameters()
    apply_lora(model, LoraConfig())
    adapter = trainable_parameter_count(model)
    # rank 16 × (1536 + 1536) per q/k/v/o: 40 blocks × (self + audio) × 4 + 6 bridge layers × 2 × 4.
    assert adapter == (40 * 2 * 4 + 6 * 2 * 4) * 16 * (1536 + 1536)
    assert adapter / base < 0.01
    assert adapter_num_bytes(model) == 4 * adapter
