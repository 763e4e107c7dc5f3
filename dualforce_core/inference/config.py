"""Streaming sampler settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dualforce_core.config_model import ConfigModel
from dualforce_core.models.attention import AttentionBackend


class InferenceConfig(ConfigModel):
    steps: int = Field(4, ge=1)
    seed: int = 0
    cache_frames: int = Field(12, ge=1, description="rolling KV window in latent frames (reference excluded)")
    audio_guidance: float = 1.0
    max_audio_s: float = 600.0
    pipelined: bool = False
    pipeline_lag: int = Field(1, ge=1, description="pipelined mode: ticks between chunk starts (<= steps)")
    size: int | None = Field(
        None, ge=16, multiple_of=16, description="square output resolution; None = data.size (training size)"
    )
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    attention_backend: AttentionBackend = Field("sdpa", description="flash needs flash-attn (a CUDA machine)")
    hubert_window_s: float = Field(
        10.0, gt=0, description="HuBERT runs on windows this long (bounded memory)"
    )
    hubert_context_s: float = Field(1.0, ge=0, description="extra audio on each side of a HuBERT window")
