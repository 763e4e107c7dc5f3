"""Rotary position embeddings on interleaved pairs (Wan layout), as (cos, sin) tables [S, head_dim/2].

Video tokens use Wan's 3D split of the head dim (t = d - 4*(d//6), h = w = 2*(d//6): 44/42/42 for 128),
each axis with its own frequency ladder. Structure tokens and the bridge rotate the whole head dim by
the latent-frame index, so tokens of the two towers that share a frame share a phase. Audio
cross-attention rotates queries and keys by their time in audio tokens, so a frame can tell which part
of its audio window it is hearing (a position-free window is a bag of sounds: its syllables blur).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _angles(positions: Tensor, dim: int, theta: float) -> Tensor:
    inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
    return positions.to(torch.float64)[:, None] * inv_freq[None, :]


def video_split(head_dim: int) -> tuple[int, int, int]:
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def video_rope(frames: Tensor, height: int, width: int, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """Tables for tokens ordered (frame, row, column); `frames` are absolute latent frame indices."""
    d_t, d_h, d_w = video_split(head_dim)
    device = frames.device
    f = _angles(frames, d_t, theta)[:, None, None, :].expand(-1, height, width, -1)
    h = _angles(torch.arange(height, device=device), d_h, theta)[None, :, None, :]
    w = _angles(torch.arange(width, device=device), d_w, theta)[None, None, :, :]
    grid = frames.numel(), height, width
    angles = torch.cat([f, h.expand(*grid, -1), w.expand(*grid, -1)], dim=-1).flatten(0, 2)
    return angles.cos().float(), angles.sin().float()


def temporal_rope(
    frames: Tensor, tokens_per_frame: int, head_dim: int, theta: float
) -> tuple[Tensor, Tensor]:
    """Tables for `tokens_per_frame` tokens per latent frame, all rotated by their frame index."""
    angles = _angles(frames, head_dim, theta).repeat_interleave(tokens_per_frame, dim=0)
    return angles.cos().float(), angles.sin().float()


def time_rope(
    positions: Tensor, head_dim: int, theta: float, unrotated_tail: int = 0
) -> tuple[Tensor, Tensor]:
    """Tables rotating the whole head dim by (fractional) `positions`; `unrotated_tail` extra rows with
    angle 0 (the audio null token, which has no time)."""
    angles = _angles(positions, head_dim, theta)
    angles = torch.cat([angles, angles.new_zeros(unrotated_tail, angles.shape[1])])
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of x [B, S, heads, head_dim] in fp32."""
    cos, sin = (t[None, :, None, :] for t in rope)
    pairs = x.float().unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)
    return out.type_as(x)
