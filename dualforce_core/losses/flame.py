"""FLAME alignment: tie the predicted keypoint motion to a parametric face model's expression and jaw.

LivePortrait keypoints are implicit and unnamed; regressing FLAME expression + jaw from them gives the
structure tower a semantically anchored target where a dataset provides FLAME fits. Datasets without a
FLAME column contribute nothing, which is announced once per process rather than every step.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from dualforce_core.flame_layout import FLAME_DIM

logger = logging.getLogger(__name__)

_announced_missing_targets = False


class FlameHead(nn.Module):
    """MLP from one latent frame's predicted clean structure (any trailing shape) to FLAME parameters."""

    def __init__(self, in_features: int, flame_dim: int = FLAME_DIM, hidden: int = 256) -> None:
        super().__init__()
        self.in_features = in_features
        self.net = nn.Sequential(
            nn.LayerNorm(in_features), nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, flame_dim)
        )

    def forward(self, structure: Tensor) -> Tensor:
        """[B, F, ...] with prod(...) == in_features → [B, F, flame_dim]."""
        features = structure.flatten(2).float()
        if features.shape[-1] != self.in_features:
            raise ValueError(
                f"FlameHead expects {self.in_features} features per frame, got {tuple(structure.shape[2:])}"
            )
        return self.net(features)


def _no_targets(pred: Tensor) -> Tensor:
    global _announced_missing_targets
    if not _announced_missing_targets:
        logger.info("no FLAME targets in the batch: FLAME alignment loss is 0 until a dataset provides them")
        _announced_missing_targets = True
    return pred.new_zeros((), dtype=torch.float32) + pred.sum() * 0.0


def flame_alignment_loss(pred: Tensor, target: Tensor | None, valid_mask: Tensor | None = None) -> Tensor:
    """Mean squared error over valid frames of [B, F, flame_dim] FLAME predictions.

    `valid_mask` is [B] (clip has FLAME fits) or [B, F]; invalid targets may hold anything, NaN included.
    No target or no valid frame: an exact 0 that back-propagates, and one log record per process.
    """
    if target is None:
        return _no_targets(pred)
    if target.shape != pred.shape:
        raise ValueError(f"FLAME target {tuple(target.shape)} does not match prediction {tuple(pred.shape)}")
    mask = torch.ones(pred.shape[:2], dtype=torch.bool, device=pred.device)
    if valid_mask is not None:
        given = valid_mask.to(device=pred.device, dtype=torch.bool)
        mask = mask & (given[:, None] if given.ndim == 1 else given)
    if not bool(mask.any()):
        return _no_targets(pred)
    safe_target = torch.where(mask[..., None], target.float(), torch.zeros_like(pred, dtype=torch.float32))
    per_frame = (pred.float() - safe_target).square().mean(dim=-1)
    return (per_frame * mask).sum() / mask.sum()
