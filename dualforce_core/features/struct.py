"""LivePortrait motion → the `struct_features` table; each run refreshes the statistics (`data.struct_stats`).

Per frame: the 70-vector `[exp (21×3 row-major), pitch, yaw, roll, tx, ty, tz, scale]` (degrees for the
angles), float32 [T, 70]. Per clip: the canonical keypoints [21, 3] of the clip's FIRST frame — the frame
the model uses as its reference portrait, and LivePortrait likewise takes canonical keypoints from its
source image. Frames are prepared as LivePortrait's `prepare_source`: cv2 resize to 256×256 (bilinear),
RGB / 255, clipped to [0, 1].

`DataConfig.struct_extractor` picks the source: `liveportrait` (the network at the `liveportrait_motion`
weights path) or `sidecar` (the synthetic dataset's ground-truth motion in the same layout, a labelled
stand-in: `struct_sidecar`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import torch

from dualforce_core.config import DualForceConfig
from dualforce_core.data.media import decode_video
from dualforce_core.data.struct_stats import compute_struct_stats, stats_path
from dualforce_core.data.tables import STRUCT_FEATURES
from dualforce_core.data.tensor_codec import encode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.liveportrait import (
    INPUT_SIZE,
    MotionExtractor,
    load_motion_extractor,
    motion_vector,
)
from dualforce_core.features.stage import ExtractReport, run_extractor
from dualforce_core.features.struct_sidecar import canonical_keypoints, sidecar_motion
from dualforce_core.motion_layout import NUM_KP
from dualforce_core.weights import WeightsRegistry

FRAME_BATCH = 16  # frames per forward pass: bounds memory whatever the clip length


def prepare_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] RGB → float [T, 3, 256, 256] in [0, 1]."""
    if frames.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
        frames = np.stack([cv2.resize(f, (INPUT_SIZE, INPUT_SIZE)) for f in frames])
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0).clamp_(0.0, 1.0)
    return x.permute(0, 3, 1, 2)


@torch.no_grad()
def motion_params(model: MotionExtractor, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [T, H, W, 3] → (motion [T, 70], canonical keypoints of frame 0 [21, 3]), float32."""
    device = next(model.parameters()).device
    motion, first_kp = [], None
    for start in range(0, len(frames), FRAME_BATCH):
        raw = model(prepare_frames(frames[start : start + FRAME_BATCH]).to(device))
        motion.append(motion_vector(raw).cpu())
        if first_kp is None:
            first_kp = raw["kp"][0].float().reshape(NUM_KP, 3).cpu()
    assert first_kp is not None, "a clip has at least one frame"
    return torch.cat(motion), first_kp


SIDECAR_EXTRACTOR_ID = "struct:sidecar"


class StructFeatureStage:
    table = STRUCT_FEATURES.name

    def __init__(self, registry: WeightsRegistry, device: str = "cpu", kind: str = "liveportrait"):
        self.kind = kind
        self.device = device
        self.model: MotionExtractor | None = None
        if kind == "sidecar":
            self.extractor_id = SIDECAR_EXTRACTOR_ID
            self.clip_columns: tuple[str, ...] = ("sidecar_path", "start_frame", "num_frames")
        else:
            self.weights = registry.path("liveportrait_motion")
            self.extractor_id = (
                f"liveportrait_motion:{registry.fingerprint('liveportrait_motion')[:16]}:{INPUT_SIZE}"
            )
            self.clip_columns = ("video", "num_frames")

    def load(self) -> None:
        if self.kind != "sidecar":
            self.model = load_motion_extractor(self.weights).to(self.device)

    def _motion(self, clip: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.kind == "sidecar":
            if not clip["sidecar_path"]:
                return None
            motion = sidecar_motion(Path(clip["sidecar_path"]), clip["start_frame"], clip["num_frames"])
            return torch.from_numpy(motion), torch.from_numpy(canonical_keypoints())
        assert self.model is not None, "load() first"
        frames = decode_video(clip["video"])
        if len(frames) != clip["num_frames"]:
            raise UserError(
                f"clip {clip['clip_id']}: video holds {len(frames)} frames, the table says {clip['num_frames']}"
            )
        return motion_params(self.model, frames)

    def process(self, clips: pa.Table) -> pa.Table:
        rows: dict[str, list] = {k: [] for k in ("clip_id", "dataset", "motion", "shape", "canonical_kp")}
        for clip in clips.to_pylist():
            found = self._motion(clip)
            if found is None:
                continue
            motion, kp = found
            blob, shape, _ = encode_tensor(motion, "float32")
            rows["clip_id"].append(clip["clip_id"])
            rows["dataset"].append(clip["dataset"])
            rows["motion"].append(blob)
            rows["shape"].append(shape)
            rows["canonical_kp"].append(encode_tensor(kp, "float32")[0])
        n = len(rows["clip_id"])
        return STRUCT_FEATURES.rows(
            {
                "clip_id": rows["clip_id"],
                "dataset": rows["dataset"],
                "extractor_id": [self.extractor_id] * n,
                "motion": rows["motion"],
                "shape": rows["shape"],
                "canonical_kp": rows["canonical_kp"],
            }
        )


def extract_struct_features(
    dataset: str, config: DualForceConfig, device: str = "cpu", progress: bool = True
) -> ExtractReport:
    """Motion for every clip not yet extracted with these weights; then refresh the dataset statistics."""
    kind = config.data.struct_extractor
    stage = StructFeatureStage(WeightsRegistry.from_config(config.weights), device, kind)
    report = run_extractor(stage, dataset, config.data.feature_batch_size, progress)
    if report.without_source:
        print(
            f"struct_features[{dataset}]: {report.without_source} clips have no sidecar motion and no "
            "structure row (use data.struct_extractor=liveportrait for real videos)"
        )
    if report.written or not stats_path(dataset).is_file():
        compute_struct_stats(dataset)
    return report
