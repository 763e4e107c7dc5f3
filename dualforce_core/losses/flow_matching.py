"""Velocity regression loss of one modality, averaged per latent frame so every frame counts the same."""

from __future__ import annotations

import torch
from torch import Tensor


def flow_matching_loss(
    pred_v: Tensor,
    target_v: Tensor,
    frame_dim: int,
    mask_reference: bool = True,
    weights: Tensor | None = None,
) -> Tensor:
    """Weighted mean over frames of the per-frame velocity MSE, computed in fp32.

    `weights` ([B, F], or [B] per sample) scales each frame; the reference frame (frame 0, σ = 0: the
    identity image, never generated) gets weight 0 when `mask_reference`. When no frame has weight (F = 1
    with the reference masked) the loss is an exact 0 that still back-propagates, never NaN.
    """
    if pred_v.shape != target_v.shape:
        raise ValueError(
            f"prediction {tuple(pred_v.shape)} and target {tuple(target_v.shape)} differ in shape"
        )
    if not 1 <= frame_dim < pred_v.ndim:
        raise ValueError(f"frame_dim {frame_dim} is not a non-batch axis of a {pred_v.ndim}-d tensor")
    err = (pred_v.float() - target_v.float()).square()
    other = [d for d in range(err.ndim) if d not in (0, frame_dim)]
    per_frame = err.mean(dim=other) if other else err
    batch, frames = per_frame.shape
    if weights is None:
        w = per_frame.new_ones(batch, frames)
    else:
        w = weights.to(per_frame.dtype)
        if w.ndim == 1:
            w = w[:, None].expand(batch, frames)
        if tuple(w.shape) != (batch, frames):
            raise ValueError(
                f"weights have shape {tuple(weights.shape)}, expected [B, F] = [{batch}, {frames}]"
            )
    if mask_reference:
        w = torch.cat([torch.zeros_like(w[:, :1]), w[:, 1:]], dim=1)
    total = w.sum()
    return (per_frame * w).sum() / torch.where(total > 0, total, torch.ones_like(total))
