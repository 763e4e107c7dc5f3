"""The video tower loaded from a tiny random Wan (diffusers) reproduces Wan's output.

Causal mask off, bridge off, no audio (the audio path's output projection is zero-initialised, and
the loader zeroes the struct-σ projection), text cross-attention on with the same context as Wan.
Head dim 32 splits 12/10/10 for RoPE, so the RoPE layout, q/k norms, modulation, timestep
embedding, head and unpatchify all have to match.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from diffusers import WanTransformer3DModel

from dualforce_core.errors import UserError
from dualforce_core.models import DualForceModel, ModelConfig, load_wan_weights

WAN = {"num_attention_heads": 2, "attention_head_dim": 32, "ffn_dim": 96, "num_layers": 2, "text_dim": 24}
# diffusers names → original Wan 2.1 names, to prove the adapter reads both layouts.
TO_ORIGINAL = (
    (r"condition_embedder\.time_embedder\.linear_1", "time_embedding.0"),
    (r"condition_embedder\.time_embedder\.linear_2", "time_embedding.2"),
    (r"condition_embedder\.time_proj", "time_projection.1"),
    (r"condition_embedder\.text_embedder\.linear_1", "text_embedding.0"),
    (r"condition_embedder\.text_embedder\.linear_2", "text_embedding.2"),
    (r"blocks\.(\d+)\.scale_shift_table", r"blocks.\1.modulation"),
    (r"attn1\.to_out\.0", "self_attn.o"),
    (r"attn1\.to_", "self_attn."),
    (r"attn1\.", "self_attn."),
    (r"attn2\.to_out\.0", "cross_attn.o"),
    (r"attn2\.to_", "cross_attn."),
    (r"attn2\.", "cross_attn."),
    (r"blocks\.(\d+)\.norm2", r"blocks.\1.norm3"),
    (r"ffn\.net\.0\.proj", "ffn.0"),
    (r"ffn\.net\.2", "ffn.2"),
    (r"^scale_shift_table", "head.modulation"),
    (r"^proj_out", "head.head"),
)


def wan_and_config() -> tuple[Any, ModelConfig]:
    torch.manual_seed(0)
    wan: Any = WanTransformer3DModel(**WAN, rope_max_seq_len=64)
    wan.eval()
    config = ModelConfig(
        video_dim=64,
        video_heads=2,
        video_layers=2,
        video_ffn_dim=96,
        text_dim=24,
        audio_dim=32,
        audio_layers=3,
        causal=False,
        bridge_strategy="none",
    )
    return wan, config


def to_original(key: str) -> str:
    for pattern, repl in TO_ORIGINAL:
        key = re.sub(pattern, repl, key)
    return key


def test_video_tower_reproduces_wan() -> None:
    wan, config = wan_and_config()
    ours = DualForceModel.from_config(config).eval()
    report = load_wan_weights(ours, wan.state_dict())
    assert report.skipped == []
    assert len(report.loaded) == len(wan.state_dict())
    assert "video.blocks.0.audio_attn.q.weight" in report.new

    g = torch.Generator().manual_seed(1)
    kw = ours.dummy_inputs(batch_size=2, latent_frames=3, seed=1, height=8, width=12)
    sigma = torch.tensor([0.37, 0.81])
    text = torch.randn(2, 7, 24, generator=g)
    with torch.no_grad():
        expected = wan(kw["video"], timestep=sigma * 1000, encoder_hidden_states=text).sample
        got = ours(
            kw["video"],
            kw["struct"],
            sigma[:, None].expand(-1, 3),
            kw["sigma_struct"],
            audio=kw["audio"],
            audio_drop=torch.ones(2, dtype=torch.bool),
            text=text,
        ).video
    assert expected.abs().mean() > 0.1
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)

    original = {to_original(k): v for k, v in wan.state_dict().items()}
    assert "blocks.0.self_attn.norm_q.weight" in original and "head.head.weight" in original
    again = DualForceModel.from_config(config).eval()
    assert load_wan_weights(again, original).loaded == report.loaded
    with torch.no_grad():
        for key, value in again.state_dict().items():
            assert torch.equal(value, ours.state_dict()[key]) or key in report.new, key


def test_reference_channels_start_at_zero_so_the_loaded_tower_is_still_wan() -> None:
    wan, config = wan_and_config()
    plain = DualForceModel.from_config(config).eval()
    concat = DualForceModel.from_config(config.model_copy(update={"reference_concat": True})).eval()
    load_wan_weights(plain, wan.state_dict())
    report = load_wan_weights(concat, wan.state_dict())
    assert "patch_embedding.weight" in report.loaded and report.skipped == []
    assert concat.patch_embedding.weight[:, 16:].abs().sum() == 0
    kw = plain.dummy_inputs(batch_size=1, latent_frames=3, seed=2, height=8, width=8)
    text = torch.randn(1, 5, 24, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = plain(**kw, text=text).video
        got = concat(**kw, reference=kw["video"][:, :, :1] + 3.0, text=text).video
    # Zero kernels add exact zeros to the same sums, but the conv now reduces over 32 channels, not 16:
    # fp32 round-off of a ~50-op-deep forward on outputs of order 1.
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_mismatched_shapes_are_reported_not_loaded() -> None:
    wan, _ = wan_and_config()
    ours = DualForceModel.from_preset("tiny")  # width 64 too, but no text path and 256-wide FFN
    before = ours.state_dict()["video.blocks.0.ffn.0.weight"].clone()
    report = load_wan_weights(ours, wan.state_dict())
    assert torch.equal(ours.state_dict()["video.blocks.0.ffn.0.weight"], before)
    assert any(s.startswith("blocks.0.ffn.net.0.proj.weight (shape") for s in report.skipped)
    assert any(s.startswith("condition_embedder.text_embedder") for s in report.skipped)
    assert "video.blocks.0.self_attn.q.weight" in report.loaded
    with pytest.raises(UserError, match="not found"):
        load_wan_weights(ours, "/nonexistent/wan.safetensors")
