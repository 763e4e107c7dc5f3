"""Evaluation protocol: what is measured and how, written into every report."""

from __future__ import annotations

from pydantic import Field

from dualforce_core.config_model import ConfigModel


class EvalConfig(ConfigModel):
    split: str = "test"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    limit: int | None = None
    sync_offsets: int = 15
    fvd_clip_frames: int = 16
