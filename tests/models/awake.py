"""Tiny models whose zero-initialised paths are switched on, shared by the model and inference tests."""

from __future__ import annotations

import torch

from dualforce_core.models import DualForceModel


def wake(model: DualForceModel, seed: int = 0) -> DualForceModel:
    """Give every zero-initialised tensor (gates, audio/bridge output projections) random values.

    At init those paths are the identity, which would make causality, audio or bridge tests pass vacuously.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            zero = p == 0
            if zero.any():
                p.add_(torch.randn(p.shape, generator=g) * 0.1 * zero)
    return model
