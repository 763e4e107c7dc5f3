"""Conditioning embeddings: noise level (per latent frame), optional text, HuBERT audio."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def linear_fp32(linear: nn.Linear, x: Tensor) -> Tensor:
    """A linear layer evaluated in fp32 whatever its weights' dtype or an enclosing autocast: σ
    embeddings and modulation stay exact in bf16 training (a few rows per frame, so the cost is nil)."""
    args = x.float(), linear.weight.float(), linear.bias.float()
    if x.device.type == "meta" or not torch.is_autocast_enabled(x.device.type):
        return F.linear(*args)
    with torch.autocast(x.device.type, enabled=False):
        return F.linear(*args)


def sinusoid(sigma: Tensor, dim: int) -> Tensor:
    """Wan's timestep features of t = σ·1000, `[cos, sin]` order, computed in float64 like Wan."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=sigma.device) / half
    )
    args = (sigma.to(torch.float64) * 1000.0)[..., None] * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1).float()


class TimestepEmbedder(nn.Module):
    """σ [...] → sinusoid(freq_dim) → Linear → SiLU → Linear: [..., dim], in fp32."""

    def __init__(self, freq_dim: int, dim: int) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.linear_1 = nn.Linear(freq_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, sigma: Tensor) -> Tensor:
        return linear_fp32(self.linear_2, F.silu(linear_fp32(self.linear_1, sinusoid(sigma, self.freq_dim))))


class TextProjection(nn.Module):
    """Wan's text embedder: Linear → GELU(tanh) → Linear."""

    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(text_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, text: Tensor) -> Tensor:
        return self.linear_2(F.gelu(self.linear_1(text), approximate="tanh"))


class AudioLayerMix(nn.Module):
    """Learned softmax-weighted sum over HuBERT hidden layers: [B, T_a, L, D_a] → [B, T_a, D_a].

    Starts uniform; which layers carry phonetic vs prosodic information is left to training.
    """

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(layers))

    def forward(self, audio: Tensor) -> Tensor:
        weights = self.logits.float().softmax(0).to(audio.dtype)
        return torch.einsum("btld,l->btd", audio, weights)


class AudioProjection(nn.Module):
    """Mixed HuBERT features → one tower's width, plus a learned null token appended to the sequence.

    Every frame may always attend the null token: frames whose window is empty (audio shorter than
    the video) and samples whose audio is dropped for classifier-free guidance see only it, so
    "no audio" is a learned embedding rather than zeros, and attention never has an empty row.
    """

    def __init__(self, audio_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(audio_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)
        self.null = nn.Parameter(torch.randn(1, 1, dim) * 0.02)

    def forward(self, mixed: Tensor | None, batch: int) -> Tensor:
        null = self.null.expand(batch, -1, -1)
        if mixed is None:
            return null
        tokens = self.linear_2(F.gelu(self.linear_1(mixed), approximate="tanh"))
        return torch.cat([tokens, null.to(tokens.dtype)], dim=1)
