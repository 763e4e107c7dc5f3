"""The Wan-style DiT block shared by both towers, and the attention layer every part of the model uses."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dualforce_core.models.attention import (
    AttentionBackend,
    AttentionCache,
    BlockCausal,
    DenseMask,
    Mask,
    attend,
)
from dualforce_core.models.rope import apply_rope

Rope = tuple[Tensor, Tensor]
GATE_ROWS = (2, 5)  # (shift, scale, gate) for attention, then for the FFN


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the weights' dtype (bf16-safe), returned in fp32."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)


class FP32RMSNorm(nn.Module):
    """RMSNorm over the full width (all heads together, as Wan), computed in fp32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).type_as(x)


class Attention(nn.Module):
    """Projections, q/k RMSNorm, optional RoPE on q and k, and the K/V cache hook.

    `cache_key` names the layer in a streaming cache; layers without one (text cross-attention,
    whose context is given whole) never touch the cache. A cached layer called with a
    `context_window` (audio cross-attention) reuses the context's K/V while the window stays the
    same; otherwise (self-attention, bridge) its K/V extend the cached ones of earlier chunks.
    """

    def __init__(self, dim: int, heads: int, eps: float, qk_norm: bool, kv_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim or dim, dim)
        self.v = nn.Linear(kv_dim or dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q: nn.Module = FP32RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k: nn.Module = FP32RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.cache_key = ""

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        q_rope: Rope | None = None,
        k_rope: Rope | None = None,
        mask: Mask = None,
        backend: AttentionBackend = "sdpa",
        cache: AttentionCache | None = None,
        context_window: Hashable | None = None,
    ) -> Tensor:
        ctx = x if context is None else context
        q = self.norm_q(self.q(x)).unflatten(-1, (self.heads, -1))
        if q_rope is not None:
            q = apply_rope(q, q_rope)
        if cache is None or not self.cache_key:
            k, v = self._key_value(ctx, k_rope)
        elif context_window is not None:
            k, v = cache.context_kv(self.cache_key, context_window, lambda: self._key_value(ctx, k_rope))
        else:
            fresh = self._key_value(ctx, k_rope)
            k, v = cache.extend(self.cache_key, *fresh)
            past = k.shape[1] - fresh[0].shape[1]
            if past and isinstance(mask, BlockCausal):
                mask = mask.with_past(past)
        return self.o(attend(q, k, v, mask, backend).flatten(2))

    def _key_value(self, context: Tensor, rope: Rope | None) -> tuple[Tensor, Tensor]:
        k = self.norm_k(self.k(context)).unflatten(-1, (self.heads, -1))
        v = self.v(context).unflatten(-1, (self.heads, -1))
        return (k if rope is None else apply_rope(k, rope)), v


def zero_linear_(linear: nn.Linear) -> None:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)


def zero_gate_rows_(proj: nn.Linear, dim: int) -> None:
    """Zero the gate outputs of a [6·dim] modulation projection (AdaLN-Zero)."""
    with torch.no_grad():
        for row in GATE_ROWS:
            proj.weight[row * dim : (row + 1) * dim].zero_()
            proj.bias[row * dim : (row + 1) * dim].zero_()


@dataclass
class BlockInputs:
    """Everything a tower's blocks share in one forward (built once per forward, not per block)."""

    frames: int
    rope: Rope
    mask: Mask
    backend: AttentionBackend
    audio: Tensor
    audio_mask: DenseMask
    text: Tensor | None = None
    cache: AttentionCache | None = None
    audio_window: Hashable | None = None  # names the audio slice, so a cache can keep its K/V
    audio_q_rope: Rope | None = None  # each query token's time, in audio tokens
    audio_k_rope: Rope | None = None  # each audio token's time (the null token unrotated)


class DiTBlock(nn.Module):
    """Wan block: modulated self-attention, (text), audio cross-attention, modulated FFN.

    Modulation `table + mod[b, f]` is [B, F, 6, dim] in fp32 and broadcast over the frame's tokens.
    Gates start at zero (AdaLN-Zero); the audio cross-attention has no gate, so its output
    projection starts at zero instead. With `text=True` it holds every tensor of a Wan 2.1 block
    (mapped by `wan_adapter`).
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, eps: float, qk_norm: bool, text: bool) -> None:
        super().__init__()
        table = torch.randn(6, dim) / dim**0.5
        table[list(GATE_ROWS)] = 0.0
        self.table = nn.Parameter(table)
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.self_attn = Attention(dim, heads, eps, qk_norm)
        self.text_norm = FP32LayerNorm(dim, eps) if text else None
        self.text_attn = Attention(dim, heads, eps, qk_norm) if text else None
        self.audio_norm = FP32LayerNorm(dim, eps)
        self.audio_attn = Attention(dim, heads, eps, qk_norm)
        zero_linear_(self.audio_attn.o)
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim)
        )

    def forward(self, x: Tensor, mod: Tensor, inputs: BlockInputs) -> Tensor:
        frames = inputs.frames
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.table.float() + mod).unsqueeze(3).unbind(2)

        def per_frame(h: Tensor) -> Tensor:
            return h.float().unflatten(1, (frames, -1))

        h = (per_frame(self.norm1(x)) * (1 + scale1) + shift1).flatten(1, 2).type_as(x)
        h = self.self_attn(
            h,
            q_rope=inputs.rope,
            k_rope=inputs.rope,
            mask=inputs.mask,
            backend=inputs.backend,
            cache=inputs.cache,
        )
        x = (per_frame(x) + per_frame(h) * gate1).flatten(1, 2).type_as(x)

        if self.text_attn is not None and self.text_norm is not None and inputs.text is not None:
            x = x + self.text_attn(self.text_norm(x).type_as(x), inputs.text, backend=inputs.backend)
        h = self.audio_attn(
            self.audio_norm(x).type_as(x),
            inputs.audio,
            q_rope=inputs.audio_q_rope,
            k_rope=inputs.audio_k_rope,
            mask=inputs.audio_mask,
            backend=inputs.backend,
            cache=None if inputs.audio_window is None else inputs.cache,
            context_window=inputs.audio_window,
        )
        x = x + h

        h = (per_frame(self.norm2(x)) * (1 + scale2) + shift2).flatten(1, 2).type_as(x)
        # The residual add comes last, on flat tokens, so the output is a fresh tensor, not a view: FSDP2's
        # pre-backward hook on a view output is lost by a later in-place op. Same values as per frame.
        return (x.float() + (per_frame(self.ffn(h)) * gate2).flatten(1, 2)).type_as(x)
