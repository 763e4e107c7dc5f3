"""Shared helpers for the model tests: tiny fp32 models whose zero-initialised paths are switched on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from dualforce_core.models import DualForceModel
from tests.models.awake import wake

# Tiny shapes: intra-op threads only add contention on the shared CPU (measured 15x slower with 2).
torch.set_num_threads(1)


@pytest.fixture
def tiny() -> Callable[..., DualForceModel]:
    def build(**overrides: Any) -> DualForceModel:
        torch.manual_seed(0)
        return wake(DualForceModel.from_preset("tiny", **overrides)).eval()

    return build
