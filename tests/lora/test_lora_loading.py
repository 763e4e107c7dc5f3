"""Loaded adapters: scale 0 is exactly the base, scale 1 the trained model (to fp32 rounding); switching is
exact."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from safetensors import safe_open

from dualforce_core.lora.adapter import (
    active_adapter,
    adapter_names,
    adapter_parameters,
    apply_lora,
    set_active_adapter,
    set_lora_scale,
)
from dualforce_core.lora.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapter, save_adapter
from dualforce_core.lora.merge import MERGE_RECORD, merge_adapter, merge_lora, merged_model
from dualforce_core.models import DualForceModel
from dualforce_core.models.model import WEIGHTS_FILE
from tests.lora.lora_fixtures import LORA, TrainedAdapter, model_inputs

# `trained.trained_video` comes from the training-side model, whose adapter requires grad; a loaded adapter is
# frozen, and `matmul` folds a non-contiguous input into `mm` or runs `bmm` depending on requires_grad (first seen
# at bridge.0's lora_A): other kernels, so against it only fp32 closeness holds, as for a merged model. fp32, ~30
# ops deep (2+2 blocks, bridge) on outputs ≲ 4 (mean ~0.7): 1e-5 relative and absolute. Measured ≤ 1.2e-6; the
# adapter itself moves the outputs by ~1.
RTOL, ATOL = 1e-5, 1e-5


def run(model: torch.nn.Module, trained: TrainedAdapter) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        out = model(**model_inputs(trained.batch))
    return out.video, out.struct


def random_adapter(base_dir: Path, out: Path, seed: int) -> Path:
    """A second adapter for the same base, with random (non-zero) weights."""
    model = DualForceModel.from_pretrained(base_dir)
    apply_lora(model, LORA)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter_parameters(model).values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return save_adapter(model, out, base_checkpoint=base_dir)


def test_adapter_directory_is_peft_layout(trained: TrainedAdapter) -> None:
    config = json.loads((trained.adapter_dir / ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA"
    assert (config["r"], config["lora_alpha"]) == (4, 4.0)
    assert config["dualforce"]["preset"] == "tiny"
    assert len(config["dualforce"]["base_config_sha256"]) == 64
    with safe_open(str(trained.adapter_dir / ADAPTER_WEIGHTS), framework="pt") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith("base_model.model.") for k in keys)
    assert "base_model.model.video.blocks.0.self_attn.q.lora_A.weight" in keys


def test_scale_zero_reproduces_the_base_exactly(trained: TrainedAdapter) -> None:
    model = load_adapter(DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir, scale=0.0)
    video, _ = run(model, trained)
    # Same base kernels (base weights require grad in both models) plus exactly 0·adapter: bit-identical.
    assert torch.equal(video, trained.base_video)


def test_scale_one_reproduces_the_trained_model(trained: TrainedAdapter) -> None:
    model = load_adapter(DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir)
    video, struct = run(model, trained)
    torch.testing.assert_close(video, trained.trained_video, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(struct, trained.trained_struct, rtol=RTOL, atol=ATOL)
    assert not any(p.requires_grad for p in adapter_parameters(model).values())


def test_intermediate_scale_moves_between_base_and_trained(trained: TrainedAdapter) -> None:
    model = load_adapter(DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir, scale=0.5)
    half, _ = run(model, trained)
    to_base = (half - trained.base_video).abs().mean()
    to_trained = (half - trained.trained_video).abs().mean()
    full = (trained.trained_video - trained.base_video).abs().mean()
    assert 0 < to_base < full and 0 < to_trained < full


def test_merged_checkpoint_matches_the_unmerged_adapter(trained: TrainedAdapter, tmp_path: Path) -> None:
    out = merge_lora(trained.base_dir, trained.adapter_dir, tmp_path / "merged")
    with safe_open(str(out / WEIGHTS_FILE), framework="pt") as f:
        assert not [k for k in f.keys() if "lora" in k or "base_layer" in k]  # noqa: SIM118
    merged = DualForceModel.from_pretrained(out)
    video, struct = run(merged, trained)
    torch.testing.assert_close(video, trained.trained_video, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(struct, trained.trained_struct, rtol=RTOL, atol=ATOL)
    record = json.loads((out / MERGE_RECORD).read_text())
    assert record["scale"] == 1.0 and record["rank"] == 4


def test_merged_model_at_scale_zero_is_the_base(trained: TrainedAdapter) -> None:
    model = load_adapter(DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir, scale=0.0)
    merged = merged_model(model)
    base = DualForceModel.from_pretrained(trained.base_dir).state_dict()
    assert all(torch.equal(v, base[k]) for k, v in merged.state_dict().items())


def test_generator_path_adapter_folded_into_a_plain_model(trained: TrainedAdapter) -> None:
    """`generate --lora DIR`: the sampler runs the merged model as it runs any checkpoint."""
    model = merge_adapter(DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir)
    assert not [k for k in model.state_dict() if "lora" in k]
    video, _ = run(model, trained)
    torch.testing.assert_close(video, trained.trained_video, rtol=RTOL, atol=ATOL)


def test_merging_keeps_the_base_dtype(trained: TrainedAdapter) -> None:
    base = DualForceModel.from_pretrained(trained.base_dir, dtype=torch.bfloat16)
    merged = merge_adapter(base, trained.adapter_dir)
    assert {p.dtype for p in merged.parameters()} == {torch.bfloat16}
    reference = DualForceModel.from_pretrained(trained.base_dir, dtype=torch.bfloat16).state_dict()
    changed = [k for k, v in merged.state_dict().items() if not torch.equal(v, reference[k])]
    assert changed and all(
        ".self_attn." in k or ".audio_attn." in k or k.startswith("bridge.") for k in changed
    )


def test_switching_adapters_without_reloading_the_base(trained: TrainedAdapter, tmp_path: Path) -> None:
    other_dir = random_adapter(trained.base_dir, tmp_path / "other", seed=5)
    other_alone = load_adapter(DualForceModel.from_pretrained(trained.base_dir), other_dir)
    other_video, _ = run(other_alone, trained)

    model = DualForceModel.from_pretrained(trained.base_dir)
    base_q = model.get_parameter("video.blocks.0.self_attn.q.weight")
    load_adapter(model, trained.adapter_dir, name="person_a")
    load_adapter(model, other_dir, name="person_b")
    assert adapter_names(model) == ["person_a", "person_b"]
    assert active_adapter(model) == "person_b"
    assert torch.equal(run(model, trained)[0], other_video)  # both frozen loads of one file: same kernels
    set_active_adapter(model, "person_a")
    torch.testing.assert_close(run(model, trained)[0], trained.trained_video, rtol=RTOL, atol=ATOL)
    set_lora_scale(model, 0.0, "person_a")
    assert torch.equal(run(model, trained)[0], trained.base_video)
    set_active_adapter(model, "person_b")
    assert torch.equal(run(model, trained)[0], other_video)
    # Same base tensor throughout: the base was never reloaded or copied.
    assert model.get_parameter("video.blocks.0.self_attn.q.base_layer.weight") is base_q


def test_stock_peft_reads_the_adapter(trained: TrainedAdapter) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unexpected keyword arguments")
        model = PeftModel.from_pretrained(
            DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir
        )
    video, _ = run(model, trained)
    torch.testing.assert_close(video, trained.trained_video, rtol=RTOL, atol=ATOL)
