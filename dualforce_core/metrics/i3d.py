"""I3D (Kinetics-400) features for FVD, through the TorchScript file of the StyleGAN-V protocol.

`i3d_torchscript.pt` is the TF-Hub I3D of the original FVD (Unterthiner et al. 2019) ported to
TorchScript by StyleGAN-V (Skorokhodov et al., CVPR 2022). StyleGAN-V `src/metrics/
frechet_video_distance.py` calls it as `detector(videos, rescale=True, resize=True,
return_features=True)` on uint8 videos [N, 3, T, H, W] in 0–255: `rescale` maps to [-1, 1], `resize`
interpolates every frame to 224×224, and the 400-d output is the pre-softmax Kinetics logits, the
space FVD is defined in. Clips are 16 consecutive frames; the network's temporal pooling needs at
least 9.

Which clip, as StyleGAN-V `fvd2048_16f` takes it: ONE clip per video, videos shorter than a clip dropped
(`discard_short_videos=True`). A real video's clip starts at a uniform random frame in [0, T − 16]
(`VideoFramesFolderDataset.__getitem__` with `load_n_consecutive_random_offset=True`, its default:
`random.randint(0, T − n·s + s − 1)` at subsample s = 1); a generated video's at frame 0 (the generator is
sampled at t = 0..15, and a generated-video folder is read with `load_n_consecutive_random_offset=False`).
StyleGAN-V draws the real start unseeded; here it is drawn from a generator seeded by the clip id's
sha256 (`real_clip_start`), so a report is reproducible and adding clips moves no other clip's window.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dualforce_core.errors import UserError
from dualforce_core.metrics.torchscript import load_torchscript, save_torchscript

FEATURE_DIM = 400
CLIP_FRAMES = 16
MIN_FRAMES = 9
INPUT_SIZE = 224


def load_i3d(path: str | Path) -> torch.jit.ScriptModule:
    """`i3d_torchscript.pt` (or its stand-in); the output size is checked on every call."""
    return load_torchscript(path)


def _frames(video: Any) -> np.ndarray:
    frames = np.asarray(video)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"a video must be [T, H, W, 3], got shape {frames.shape}")
    return frames


def video_clips(video: Any, clip_frames: int = CLIP_FRAMES) -> np.ndarray:
    """Non-overlapping clips [n, clip_frames, H, W, 3] from the start of a video [T, H, W, 3].

    For throughput measurements (`bench/metrics.py`); FVD itself takes one clip per video (`fvd_clip`).
    """
    frames = _frames(video)
    count = frames.shape[0] // clip_frames
    return frames[: count * clip_frames].reshape(count, clip_frames, *frames.shape[1:])


def real_clip_start(num_frames: int, key: str, clip_frames: int = CLIP_FRAMES) -> int | None:
    """StyleGAN-V's start of a real video's clip: uniform in [0, num_frames − clip_frames], seeded by `key`.

    None when the video is shorter than a clip (StyleGAN-V discards it).
    """
    span = num_frames - clip_frames
    if span < 0:
        return None
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return int(np.random.default_rng(seed).integers(0, span + 1))


def fvd_clip(video: Any, start: int | None, clip_frames: int = CLIP_FRAMES) -> np.ndarray | None:
    """The one clip [1, clip_frames, H, W, 3] of a video that FVD uses, from `start`; None when there is none.

    `start`: `real_clip_start(...)` for a ground-truth video, 0 for a generated one.
    """
    frames = _frames(video)
    if start is None or start < 0 or start + clip_frames > frames.shape[0]:
        return None
    return frames[None, start : start + clip_frames]


@torch.inference_mode()
def i3d_features(net: torch.jit.ScriptModule, clips: Any, batch_size: int = 4) -> np.ndarray:
    """Logit features [N, 400] (float64) of uint8 RGB clips [N, T, H, W, 3]."""
    videos = np.asarray(clips)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3 or videos.shape[0] == 0:
        raise UserError(f"FVD needs uint8 RGB clips [N, T, H, W, 3], got {videos.dtype} {videos.shape}")
    if videos.shape[1] < MIN_FRAMES:
        raise UserError(f"I3D needs clips of at least {MIN_FRAMES} frames, got {videos.shape[1]}")
    batches = []
    for start in range(0, videos.shape[0], batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(videos[start : start + batch_size]))
        features = net(
            batch.permute(0, 4, 1, 2, 3).contiguous(), rescale=True, resize=True, return_features=True
        )
        if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
            raise UserError(f"the I3D network returned {tuple(features.shape)}, not [N, {FEATURE_DIM}]")
        batches.append(features.double())
    return torch.cat(batches).numpy()


class I3DStandIn(nn.Module):
    """Random stand-in with the real file's call signature, input protocol and output size."""

    def __init__(self) -> None:
        super().__init__()
        self.input_size = INPUT_SIZE
        self.body = nn.Sequential(
            nn.Conv3d(3, 16, (3, 7, 7), stride=(2, 8, 8)),
            nn.ReLU(),
            nn.Conv3d(16, 32, 3, stride=2),
            nn.ReLU(),
        )
        self.logits = nn.Linear(32, FEATURE_DIM)

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        x = x.to(torch.float32)
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(
                x, size=(x.shape[2], self.input_size, self.input_size), mode="trilinear", align_corners=False
            )
        logits = self.logits(self.body(x).mean(dim=(2, 3, 4)))
        if return_features:
            return logits
        return torch.softmax(logits, dim=1)


def write_stand_in(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    save_torchscript(I3DStandIn(), path)
