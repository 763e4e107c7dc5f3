"""Ingestion, feature extraction and loader settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dualforce_core.config_model import ConfigModel
from dualforce_core.curation.config import CurationConfig
from dualforce_core.timeline import FPS, SAMPLE_RATE

VideoCodec = Literal["lossless", "h264"]


class DataConfig(ConfigModel):
    fps: int = FPS
    clip_frames: int = Field(49, description="frames per clip; must be 1 (mod 4) for the Wan VAE")
    clip_stride: int = Field(48, ge=1)
    size: int = Field(256, ge=16, multiple_of=16, description="square training resolution in pixels")
    crop_mode: Literal["none", "center", "haar", "detector", "track"] = Field(
        "center",
        description="none (letterbox) | center | haar / detector (one face box per file) | track (face-track "
        "curation: shots, one person per clip, the LivePortrait-aligned crop per frame; data.curation)",
    )
    curation: CurationConfig = Field(
        default_factory=CurationConfig,
        description="crop_mode=track: detection, tracking, identity, crop and reject rules (docs/curation.md)",
    )
    face_px_median_min: float = Field(
        96.0,
        ge=0,
        description="crop_mode=track: the Dagster check `median_face_size_within_bounds` fails when a "
        "dataset's median face size (landmark extent, source pixels) falls below this",
    )
    face_px_median_max: float = Field(
        1024.0, gt=0, description="crop_mode=track: ... or rises above this (a different source resolution)"
    )
    detector_path: str | None = Field(
        None, description="face detector for crop_mode=detector: a YuNet .onnx or an OpenCV cascade .xml"
    )
    face_samples: int = Field(5, ge=1, description="frames sampled per video to place the face crop")
    face_scale: float = Field(1.8, gt=1.0, description="crop side as a multiple of the detected face side")
    max_resolution: int = Field(4096, description="longest side allowed in a source video")
    max_duration_s: float = 3600.0
    vfr_policy: Literal["resample", "reject"] = "resample"
    audio_sample_rate: int = SAMPLE_RATE
    video_codec: VideoCodec = Field(
        "lossless",
        description="clip blobs: lossless (RGB H.264: decodes to the exact crops, so features see the pixels an "
        "inference portrait has; ~2.5 MB per 49 frames at 256 px) | h264 (yuv420p at video_crf: 1/40-1/140 of "
        "the bytes, 38-42 dB PSNR from the crop at crf 18)",
    )
    video_crf: int = Field(18, ge=0, le=51, description="video_codec=h264: libx264 quality (lower is better)")
    video_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "veryfast",
        description="video_codec=h264: libx264 speed/size trade-off; superfast encodes ~4x faster (lossless "
        "blobs always use ultrafast)",
    )
    extensions: list[str] = [".mp4", ".mov", ".mkv", ".webm"]
    write_batch_mb: int = Field(256, ge=1, description="ingest buffers this many MB of clips per Lance write")
    commit_every: int = Field(
        32, ge=1, description="ingest commits to Lance after this many source files (or write_batch_mb)"
    )
    workers: int = Field(1, ge=1, description="ingest decodes/crops/encodes sources in this many processes")

    feature_batch_size: int = 8
    hubert_layers: list[int] | None = None
    latent_dtype: Literal["float16", "bfloat16"] = "bfloat16"
    vae_tiling: bool = False
    flame_extractor: Literal["none", "sidecar", "onnx", "torchscript"] = "sidecar"
    struct_extractor: Literal["liveportrait", "sidecar"] = Field(
        "liveportrait",
        description="structure source: the LivePortrait network, or a synthetic clip's ground-truth motion "
        "(a labelled stand-in that carries the face: features/struct_sidecar.py)",
    )

    @field_validator("clip_frames")
    @classmethod
    def _vae_compatible(cls, value: int) -> int:
        if value < 5 or value % 4 != 1:
            raise ValueError(f"clip_frames must be >= 5 and 1 (mod 4) (the VAE drops the rest); got {value}")
        return value
