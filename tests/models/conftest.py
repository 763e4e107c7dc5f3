"""Shared helpers for the model tests: tiny fp32 models whose zero-initialised paths are switched on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from dualforce_core.models import DualForceModel

# Tiny shapes: intra-op threads only add contention on the shared CPU (measured 15x slower with 2).
torch.set_num_threads(1)


def wake(model: DualForceModel, seed: int = 0) -> DualForceModel:
    """Give every zero-initialised tensor (gates, audio/bridge output projections) random values.

    At init those paths are the identity, which would make causality or bridge tests pass vacuously.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            zero = p == 0
            if zero.any():
                p.add_(torch.randn(p.shape, generator=g) * 0.1 * zero)
    return model


@pytest.fixture
def tiny() -> Callable[..., DualForceModel]:
    def build(**overrides: Any) -> DualForceModel:
        torch.manual_seed(0)
        return wake(DualForceModel.from_preset("tiny", **overrides)).eval()

    return build
