"""Linear warmup then cosine decay: the schedule diffusion transformers are usually trained with."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier at optimiser step `step` (0-based): ramps to 1 over `warmup_steps`, then cosine to
    `min_ratio` at `total_steps` and flat afterwards (so extending a run never raises the LR again)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_lr_scheduler(
    optimizer: Optimizer, warmup_steps: int, total_steps: int, min_ratio: float
) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps, min_ratio))
