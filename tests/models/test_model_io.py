"""Presets, parameter counts, save/load, gradient flow, input validation and the backend switch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.models import DualForceModel, ModelConfig
from dualforce_core.models.bridge import bridge_layer_indices, struct_layer_for


def hand_count_base() -> int:
    """DESIGN.md base: 2 towers × 20 blocks, width 1536, FFN 8960; HuBERT-large 25×1024; K=21, D=40."""
    d, ffn, layers, freq = 1536, 8960, 20, 256
    audio_dim, audio_layers, tokens, token_dim = 1024, 25, 21, 40

    def attention(kv: int) -> int:  # q, k, v, o with biases + q/k RMSNorm weights
        return 2 * d * d + 2 * kv * d + 4 * d + 2 * d

    block = 6 * d + attention(d) + 2 * d + attention(d) + (d * ffn + ffn + ffn * d + d)
    time_embed = freq * d + d + d * d + d
    tower_common = 2 * time_embed + 2 * (6 * d * d + 6 * d) + (audio_dim * d + d + d * d + d + d) + 2 * d
    video_tower = tower_common + layers * block + (d * 64 + 64)  # head → 16 channels × (1, 2, 2)
    struct_tower = tower_common + layers * block + (d * token_dim + token_dim)
    bridge_layers = min(10, layers // 3)  # shallow_focus
    bridge = bridge_layers * 2 * (2 * d + attention(d))
    # patch embedding: 16 latent + 16 reference channels (reference_concat) × (1, 2, 2) → d
    inputs = (2 * 16 * 4 * d + d) + (token_dim * d + d) + tokens * d + audio_layers
    return video_tower + struct_tower + bridge + inputs


def test_base_preset_counts_on_meta_and_matches_the_hand_count() -> None:
    base = DualForceModel.from_preset("base", device="meta")
    assert next(base.parameters()).device.type == "meta"
    assert base.num_parameters() == hand_count_base() == 2_047_037_057
    assert bridge_layer_indices(base.config) == [0, 1, 2, 3, 4, 5]
    kw = base.dummy_inputs(batch_size=1, latent_frames=4, seed=0)  # shapes only: meta tensors
    assert base(**kw).video.shape == kw["video"].shape
    tiny = DualForceModel.from_preset("tiny")
    assert tiny.config.chunk_frames == 2 and tiny.num_parameters() < 1_000_000


def test_save_load_round_trip_is_exact(tiny: Callable[..., DualForceModel], tmp_path: Path) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=1, latent_frames=4, seed=0)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = DualForceModel.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.config == model.config
    with torch.no_grad():
        a, b = model(**kw), loaded(**kw)
    assert torch.equal(a.video, b.video) and torch.equal(a.struct, b.struct)
    with pytest.raises(UserError, match=r"config\.json is missing"):
        DualForceModel.from_pretrained(tmp_path / "nothing")


def test_checkpoints_that_saved_a_backend_still_load(
    tiny: Callable[..., DualForceModel], tmp_path: Path
) -> None:
    """Before the backend became a per-run choice, `config.json` held it; such a checkpoint loads anywhere."""
    model = tiny()
    model.save_pretrained(tmp_path / "ckpt")
    assert "attention_backend" not in json.loads((tmp_path / "ckpt" / "config.json").read_text())
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**saved, "attention_backend": "flash"}))
    loaded = DualForceModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config and loaded.attention_backend == "sdpa"


def test_gradients_reach_every_trainable_parameter() -> None:
    """At init the zero-initialised gates and output projections themselves get gradient, so after
    one optimiser step every parameter does (AdaLN-Zero: nothing is stuck at zero)."""
    torch.manual_seed(0)
    model = DualForceModel.from_preset("tiny")
    kw = model.dummy_inputs(batch_size=2, latent_frames=4, seed=0)

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        out = model(**kw)
        (out.video.square().mean() + out.struct.square().mean()).backward()
        return {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters()}

    first = grads()
    zero_init = [
        "video.blocks.0.audio_attn.o.weight",
        "bridge.0.v_from_s.attn.o.weight",
        "bridge.0.s_from_v.attn.o.bias",
    ]
    for name in zero_init:
        assert torch.all(dict(model.named_parameters())[name] == 0) and first[name].abs().sum() > 0, name
    for tower in ("video", "struct"):
        for i in range(2):
            assert torch.all(first[f"{tower}.blocks.{i}.table"][[2, 5]].abs().sum(-1) > 0)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    second = grads()
    dead = [n for n, g in second.items() if g.abs().sum() == 0]
    assert dead == []


def test_bad_inputs_are_user_errors(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=1, latent_frames=3, seed=0)
    cases = {
        "video must be": {**kw, "video": kw["video"][:, :8]},
        "divisible by the patch": {**kw, "video": kw["video"][..., :7]},
        "struct must be": {**kw, "struct": kw["struct"][:, :2]},
        "sigma_video must be": {**kw, "sigma_video": kw["sigma_video"][:, :2]},
        "audio must be": {**kw, "audio": kw["audio"][:, :, :2]},
        "text must be": {**kw, "text": torch.zeros(1, 4, 8)},
    }
    for message, bad in cases.items():
        with pytest.raises(UserError, match=message):
            model(**bad)
    with pytest.raises(UserError, match="latent_frames"):
        model.dummy_inputs(latent_frames=0)
    with pytest.raises(UserError, match="unknown model preset"):
        DualForceModel.from_preset("huge")
    with pytest.raises(UserError, match="video_heads"):
        DualForceModel.from_preset("tiny", video_heads=3)


def test_single_frame_and_flash_switch(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=1, latent_frames=1, seed=0)
    assert kw["audio"].shape[1] == 2 and float(kw["sigma_video"][0, 0]) == 0.0
    with torch.no_grad():
        assert model(**kw).video.shape == kw["video"].shape
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="flash-attn"):
            model.set_attention_backend("flash")
        assert model.attention_backend == "sdpa"
    with pytest.raises(UserError, match="unknown attention backend"):
        model.set_attention_backend("xformers")  # type: ignore[arg-type]


def test_bridge_strategies_and_proportional_depths() -> None:
    def layers(strategy: str, video_layers: int = 20, **kw: object) -> list[int]:
        config = ModelConfig(video_layers=video_layers, bridge_strategy=strategy, **kw)
        return bridge_layer_indices(config)

    assert layers("shallow_focus") == [0, 1, 2, 3, 4, 5]
    assert layers("shallow_focus", video_layers=2) == [0]
    assert layers("distributed", video_layers=9) == [0, 3, 6]
    assert layers("progressive", video_layers=14) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 11]
    assert layers("full", video_layers=4) == [0, 1, 2, 3]
    assert layers("custom", bridge_layers=[3, 1]) == [1, 3]
    assert layers("none") == []
    deep = ModelConfig(video_layers=4, struct_layers=2)
    assert [struct_layer_for(i, deep) for i in range(4)] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="bridge_layers"):
        ModelConfig(video_layers=2, bridge_strategy="custom", bridge_layers=[5])


def test_towers_of_different_depth_run(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny(struct_layers=3, bridge_strategy="full")
    kw = model.dummy_inputs(batch_size=1, latent_frames=3, seed=0)
    with torch.no_grad():
        out = model(**kw)
    assert out.struct.shape == kw["struct"].shape and torch.isfinite(out.video).all()


def test_bf16_model_runs_with_fp32_modulation() -> None:
    torch.manual_seed(0)
    model = DualForceModel.from_preset("tiny", dtype=torch.bfloat16)
    kw = model.dummy_inputs(batch_size=1, latent_frames=3, seed=0)
    assert kw["video"].dtype == torch.bfloat16 and kw["sigma_video"].dtype == torch.float32
    mod, emb = model.video.conditioning(kw["sigma_video"], kw["sigma_struct"])
    assert mod.dtype == torch.float32 and emb.dtype == torch.float32
    out = model(**kw)
    assert out.video.dtype == torch.bfloat16 and torch.isfinite(out.video.float()).all()
    out.struct.float().square().mean().backward()
    assert model.struct.proj_out.weight.grad is not None
    fp32 = DualForceModel.from_preset("tiny")
    with torch.autocast("cpu", torch.bfloat16):
        mod, _ = fp32.video.conditioning(kw["sigma_video"], kw["sigma_struct"])
        assert mod.dtype == torch.float32
        assert fp32(**{k: v.float() for k, v in kw.items()}).video.dtype == torch.bfloat16
