"""Bridge between the towers (MOVA interactionv2): paired cross-attention at chosen block inputs.

Both directions read the same pre-update states, `x_v' = x_v + blk_v(x_v, LN(x_s))` and
`x_s' = x_s + blk_s(x_s, LN(x_v))`, so neither tower sees the other's freshly bridged state. q and k
are rotated by their latent-frame index (the towers share the temporal grid), and the block-causal
rule holds across towers. Output projections start at zero: a fresh bridge is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from dualforce_core.models.attention import AttentionBackend, AttentionCache, BlockCausal
from dualforce_core.models.block import Attention, FP32LayerNorm, Rope, zero_linear_
from dualforce_core.models.config import ModelConfig


def bridge_layer_indices(config: ModelConfig) -> list[int]:
    """Video-tower layers whose input is bridged; strategies as MOVA, at least one layer unless 'none'."""
    layers = config.video_layers
    strategy = config.bridge_strategy
    if strategy == "none":
        return []
    if strategy == "custom":
        return sorted(set(config.bridge_layers or []))
    if strategy == "full":
        return list(range(layers))
    if strategy == "distributed":
        return list(range(0, layers, 3))
    if strategy == "progressive":
        return list(range(min(8, layers))) + list(range(8, layers, 3))
    return list(range(max(1, min(10, layers // 3))))


def struct_layer_for(video_layer: int, config: ModelConfig) -> int:
    """Towers of different depth meet at proportional depths."""
    return video_layer * config.struct_layers // config.video_layers


@dataclass
class BridgeInputs:
    """Per-forward tables: temporal RoPE of each tower's tokens at each tower's head dim, and masks."""

    video_rope_v: Rope  # video tokens, video head dim
    struct_rope_v: Rope  # struct tokens, video head dim
    video_rope_s: Rope  # video tokens, struct head dim
    struct_rope_s: Rope  # struct tokens, struct head dim
    v_from_s_mask: BlockCausal | None
    s_from_v_mask: BlockCausal | None
    backend: AttentionBackend
    cache: AttentionCache | None = None


class BridgeBlock(nn.Module):
    """One direction: queries from this tower, keys/values from LN of the other tower."""

    def __init__(self, dim: int, kv_dim: int, heads: int, eps: float, qk_norm: bool) -> None:
        super().__init__()
        self.norm = FP32LayerNorm(kv_dim, eps)
        self.attn = Attention(dim, heads, eps, qk_norm, kv_dim=kv_dim)
        zero_linear_(self.attn.o)

    def forward(
        self,
        x: Tensor,
        other: Tensor,
        q_rope: Rope,
        k_rope: Rope,
        mask: BlockCausal | None,
        backend: AttentionBackend,
        cache: AttentionCache | None,
    ) -> Tensor:
        context = self.norm(other).type_as(x)
        return self.attn(x, context, q_rope=q_rope, k_rope=k_rope, mask=mask, backend=backend, cache=cache)


class BridgeLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.v_from_s = BridgeBlock(c.video_dim, c.struct_dim, c.video_heads, c.eps, c.qk_norm)
        self.s_from_v = BridgeBlock(c.struct_dim, c.video_dim, c.struct_heads, c.eps, c.qk_norm)

    def forward(self, x_v: Tensor, x_s: Tensor, b: BridgeInputs) -> tuple[Tensor, Tensor]:
        dv = self.v_from_s(x_v, x_s, b.video_rope_v, b.struct_rope_v, b.v_from_s_mask, b.backend, b.cache)
        ds = self.s_from_v(x_s, x_v, b.struct_rope_s, b.video_rope_s, b.s_from_v_mask, b.backend, b.cache)
        return x_v + dv, x_s + ds
