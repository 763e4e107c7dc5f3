"""Diffusion-forcing noise settings shared by training and sampling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dualforce_core.config_model import ConfigModel


class DiffusionConfig(ConfigModel):
    shift_video: float = Field(3.0, gt=0)
    shift_struct: float = Field(3.0, gt=0)
    sigma_sampler: Literal["uniform", "logit_normal"] = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shared_sigma_prob: float = Field(0.1, ge=0, le=1)
    context_sigma: float = Field(
        0.0, ge=0, le=1, description="noise of finished chunks when written to the cache"
    )
