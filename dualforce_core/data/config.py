"""Ingestion, feature extraction and loader settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dualforce_core.config.base import ConfigModel


class DataConfig(ConfigModel):
    fps: int = 25
    clip_frames: int = Field(49, description="frames per clip; must be 1 (mod 4) for the Wan VAE")
    clip_stride: int = Field(48, ge=1)
    size: int = Field(256, description="square training resolution in pixels")
    crop_mode: Literal["none", "center", "haar", "detector"] = "center"
    detector_path: str | None = None
    max_resolution: int = Field(4096, description="longest side allowed in a source video")
    max_duration_s: float = 3600.0
    vfr_policy: Literal["resample", "reject"] = "resample"
    audio_sample_rate: int = 16000
    video_crf: int = 18
    extensions: list[str] = [".mp4", ".mov", ".mkv", ".webm"]

    feature_batch_size: int = 8
    hubert_layers: list[int] | None = None
    latent_dtype: Literal["float16", "bfloat16"] = "bfloat16"
    vae_tiling: bool = False
    flame_extractor: Literal["none", "sidecar", "onnx", "torchscript"] = "sidecar"

    @field_validator("clip_frames")
    @classmethod
    def _vae_compatible(cls, value: int) -> int:
        if value < 5 or value % 4 != 1:
            raise ValueError(f"clip_frames must be >= 5 and 1 (mod 4) (the VAE drops the rest); got {value}")
        return value
