"""Rectified-flow arithmetic with one σ per latent frame, shared by training, losses and the sampler.

The path is `x_σ = (1-σ)·x0 + σ·ε` for σ ∈ [0, 1]: σ = 0 is data, σ = 1 is pure noise, and the network
predicts the velocity `dx/dσ = ε - x0`. Diffusion forcing gives every latent frame its own σ, so σ is a
[B, F] tensor broadcast along the frame axis of each modality's layout: video latents are [B, C, F, h, w]
(`frame_dim=2`), structure tokens are [B, F, K, D] (`frame_dim=1`).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from dualforce_core.errors import UserError
from dualforce_core.schedulers.config import DiffusionConfig

Modality = Literal["video", "struct"]

VIDEO_FRAME_DIM = 2
STRUCT_FRAME_DIM = 1


def broadcast_sigma(sigma: Tensor, x: Tensor, frame_dim: int) -> Tensor:
    """Reshape σ ([B, F] per frame, or [B] per sample) so it multiplies `x` frame by frame."""
    if frame_dim < 1 or frame_dim >= x.ndim:
        raise ValueError(f"frame_dim {frame_dim} is not a non-batch axis of a {x.ndim}-d tensor")
    batch, frames = x.shape[0], x.shape[frame_dim]
    if sigma.ndim == 1:
        sigma = sigma[:, None].expand(-1, frames)
    if tuple(sigma.shape) != (batch, frames):
        raise ValueError(
            f"sigma has shape {tuple(sigma.shape)}, expected [B, F] = [{batch}, {frames}] "
            f"for a tensor of shape {tuple(x.shape)} with frames on axis {frame_dim}"
        )
    shape = [1] * x.ndim
    shape[0], shape[frame_dim] = batch, frames
    return sigma.reshape(shape).to(dtype=x.dtype)


def add_noise(x0: Tensor, noise: Tensor, sigma: Tensor, frame_dim: int) -> Tensor:
    """Point on the straight path from data to noise at each frame's σ."""
    s = broadcast_sigma(sigma, x0, frame_dim)
    return (1 - s) * x0 + s * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The velocity the network regresses; constant along the path, so independent of σ."""
    return noise - x0


def predict_x0(x_t: Tensor, velocity: Tensor, sigma: Tensor, frame_dim: int) -> Tensor:
    """Clean sample implied by a velocity prediction (exact for the true velocity)."""
    return x_t - broadcast_sigma(sigma, x_t, frame_dim) * velocity


def euler_step(x: Tensor, velocity: Tensor, sigma: Tensor, sigma_next: Tensor, frame_dim: int) -> Tensor:
    """One Euler step of the flow ODE from σ to σ' (per frame); frames with σ' = σ stay put."""
    return x + velocity * broadcast_sigma(sigma_next - sigma, x, frame_dim)


def shift_sigma(sigma: Tensor, shift: float) -> Tensor:
    """Time shift `s·σ/(1+(s-1)σ)`: s > 1 spends more of the schedule at high noise; fixes 0 and 1."""
    if shift <= 0:
        raise UserError(f"sigma shift must be > 0, got {shift}")
    return shift * sigma / (1 + (shift - 1) * sigma)


def modality_shift(config: DiffusionConfig, modality: Modality) -> float:
    """The configured shift of one modality (video latents and keypoints have different SNR curves)."""
    return config.shift_video if modality == "video" else config.shift_struct
