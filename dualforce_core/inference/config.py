"""Streaming sampler settings."""

from __future__ import annotations

from pydantic import Field

from dualforce_core.config_model import ConfigModel


class InferenceConfig(ConfigModel):
    steps: int = Field(4, ge=1)
    seed: int = 0
    cache_frames: int = Field(12, ge=1, description="rolling KV window in latent frames (reference excluded)")
    audio_guidance: float = 1.0
    max_audio_s: float = 600.0
    pipelined: bool = False
