"""Settings of face-track curation, of the aligned crop (upstream LivePortrait defaults) and of the SyncNet
filter of curated clips (LatentSync's thresholds).

All are ordinary config sections (unknown keys are errors), hung off the config tree as `data.curation`,
so they can be written into a checkpoint's preprocessing record unchanged (`align` is); every one of them
is in `curation_fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, model_validator

from dualforce_core.config_model import ConfigModel

CURATION_VERSION = 1
"""Part of the fingerprint: bump it when a code change alters the clips or rejects made from the same video."""


class AlignConfig(ConfigModel):
    """How a face is framed: LivePortrait's recipe (`src/config/crop_config.py` defaults)."""

    scale: float = Field(2.3, gt=0, description="crop side / landmark extent (upstream source crop: 2.3)")
    vx_ratio: float = Field(0.0, description="shift along the face's x axis, in crop sides (upstream 0)")
    vy_ratio: float = Field(
        -0.125, description="shift along the face's y axis, in crop sides; negative shows more forehead"
    )
    rotate: bool = Field(
        True, description="level the face (upstream flag_do_rot); False keeps the frame axes"
    )
    axis: Literal["eye_mouth", "eye_line"] = Field(
        "eye_mouth",
        description="what sets the roll: the eye-centre → mouth-centre line (upstream default, use_lip) or "
        "the line through the two eyes",
    )
    border: Literal["constant", "replicate", "reflect"] = Field(
        "constant", description="pixels outside the source frame: black (upstream), edge copy or mirror"
    )


class CutConfig(ConfigModel):
    """The shot-cut detector: HSV-histogram distance between consecutive frames, adaptive threshold."""

    enabled: bool = True
    width: int = Field(96, ge=16, description="frames are shrunk to this width before the histogram")
    window: int = Field(25, ge=3, description="past frames whose scores set the adaptive threshold")
    k: float = Field(4.0, gt=0, description="a cut scores at least k × the median score of the window")
    min_score: float = Field(0.3, ge=0, description="a cut scores at least this much (see curation.scenes)")
    min_shot: int = Field(5, ge=1, description="frames a shot lasts at least (no second cut sooner)")


class SmoothingConfig(ConfigModel):
    method: Literal["savgol", "one_euro", "none"] = "savgol"
    window: int = Field(9, ge=3, description="Savitzky–Golay window in frames (odd)")
    order: int = Field(2, ge=1, description="Savitzky–Golay polynomial order")
    min_cutoff: float = Field(1.0, gt=0, description="one-euro minimum cutoff in Hz")
    beta: float = Field(5.0, ge=0, description="one-euro speed coefficient (per face size per second)")
    d_cutoff: float = Field(1.0, gt=0, description="one-euro derivative cutoff in Hz")


SYNC_ALIGN = AlignConfig(scale=1.5, vy_ratio=0.05)
"""SyncNet's framing of a face (the sync filter and eval.sync_crop=aligned): tighter than LivePortrait's 2.3,
placing eyes and mouth where syncnet_python's S3FD crop does (docs/evaluation.md)."""


class SyncFilterConfig(ConfigModel):
    """LatentSync's SyncNet filter of curated clips (`curation.sync_filter`): keep a clip whose confidence
    is at least `min_confidence` and whose audio-video offset is at most `max_offset`, its audio shifted by
    that offset. It needs the real `syncnet_v2.model` (weights.paths.syncnet); without it, it is skipped."""

    enabled: bool = Field(
        True, description="score curated clips with SyncNet (when its real weights are there)"
    )
    min_confidence: float = Field(
        3.0, description="smallest Sync-C (LSE-C) kept; LatentSync's filter: 3 (preprocess/sync_av.py)"
    )
    max_offset: int = Field(
        6, ge=0, description="largest |audio-video offset| in frames kept (shifted away); LatentSync: 6"
    )
    search_offset: int = Field(
        15, ge=1, description="offsets searched, ± frames (syncnet_python's vshift: 15)"
    )
    align: AlignConfig = Field(
        default_factory=lambda: SYNC_ALIGN.model_copy(),
        description="SyncNet's crop of the aligned crop: the framing of eval.sync_crop=aligned (eval.sync_align)",
    )

    @model_validator(mode="after")
    def _offset_searched(self) -> SyncFilterConfig:
        if self.max_offset > self.search_offset:
            raise ValueError(
                f"max_offset={self.max_offset} is beyond the offsets searched (search_offset={self.search_offset})"
            )
        return self


class CurationConfig(ConfigModel):
    """Detection, tracking, identity, smoothing and the reject rules for one source video."""

    crop_size: int = Field(
        256, ge=16, description="side of the crop the stored affines and landmarks refer to"
    )
    align: AlignConfig = AlignConfig()
    cuts: CutConfig = CutConfig()
    smoothing: SmoothingConfig = SmoothingConfig()

    detector: Literal["hog", "cnn"] = Field("hog", description="dlib's HOG (CPU-fast) or MMOD CNN detector")
    upsample: int = Field(1, ge=0, le=3, description="detector upsampling: 1 finds faces down to ~40 px")
    min_score: float = Field(
        0.0, description="detections scoring lower are ignored (HOG score, CNN confidence)"
    )
    detect_every: int = Field(5, ge=1, description="run the detector every k frames, track in between")
    tracker: Literal["correlation", "landmarks"] = Field(
        "correlation",
        description="between detections: dlib's correlation tracker, or re-fit the landmarks in the box of "
        "the previous frame's landmarks",
    )
    min_psr: float = Field(7.0, ge=0, description="correlation-tracker confidence below which it re-detects")
    match_iou: float = Field(0.3, gt=0, le=1, description="a detection continues a track at this IoU or more")

    embed_every: int = Field(
        25, ge=1, description="frames between identity descriptors of a track (a change is then bisected)"
    )
    identity_threshold: float = Field(0.6, gt=0, description="dlib's same-person rule: Euclidean distance")

    min_face_px: float = Field(80.0, ge=0, description="smallest landmark extent (source pixels) kept")
    several_faces: Literal["largest", "reject"] = Field(
        "largest", description="with several faces keep the dominant one, or reject every face"
    )
    dominance: float = Field(1.5, ge=1, description="the largest face must be this many times the next")
    min_confirmations: int = Field(
        2,
        ge=1,
        description="detections a track needs before it counts as another face in the frame (a one-off "
        "false detection must not split a good clip)",
    )
    max_motion: float = Field(
        0.15, gt=0, description="largest per-frame head motion (face sizes, log-scale or radians) kept"
    )
    min_blur: float = Field(
        80.0,
        ge=0,
        description="smallest median variance of the Laplacian inside the face box of the aligned grey "
        "crop at 256 px (corpus: defocused 44, sharp 190-400)",
    )
    min_frames: int = Field(49, ge=1, description="shortest clip kept (frames)")
    sync: SyncFilterConfig = Field(
        default_factory=SyncFilterConfig,
        description="ingestion's SyncNet filter of curated clips (runs only with the real SyncNet weights)",
    )

    @model_validator(mode="after")
    def _odd_window(self) -> CurationConfig:
        if self.smoothing.window % 2 == 0:
            raise ValueError(f"smoothing.window must be odd, got {self.smoothing.window}")
        if self.smoothing.order >= self.smoothing.window:
            raise ValueError("smoothing.order must be smaller than smoothing.window")
        return self


def curation_fingerprint(config: CurationConfig) -> str:
    """Hash of every setting (and the code version) that changes what curation makes of a video."""
    settings = {"config": config.model_dump(mode="json"), "curation_version": CURATION_VERSION}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
