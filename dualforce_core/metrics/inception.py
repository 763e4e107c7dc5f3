"""InceptionV3 pool3 features for FID, as clean-fid's `legacy_tensorflow` mode takes them.

`inception-2015-12-05.pt` (NVlabs: the TensorFlow Inception graph of the original FID, in TorchScript) is
called `net(images, return_features=True) -> [N, 2048]` on images [N, 3, H, W] in 0–255 at their native
size. The network itself resizes to 299×299 (bilinear `grid_sample` with the half-pixel shift of TF's
resize, border padding) and maps values with (x − 128) / 128. That is clean-fid's `legacy_tensorflow`
(GaParmar/clean-fid `cleanfid/resize.py` `build_resizer`: no resize outside the network;
`cleanfid/features.py`: `InceptionV3W(resize_inside=True)`, i.e. `self.base(x, return_features=True)` on
float images in [0, 255]) and the stylegan2-ada call. We pass uint8; the network's first step is
`img.to(torch.float32)`, so the features are those of the float images. clean-fid's default `clean` mode
instead resizes with PIL bicubic to 299 outside the network: FID values are only comparable within a mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dualforce_core.errors import UserError
from dualforce_core.metrics.torchscript import load_torchscript, save_torchscript

FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the 2015 graph's softmax, returned when return_features is False
INPUT_SIZE = 299


def load_inception(path: str | Path) -> torch.jit.ScriptModule:
    """`inception-2015-12-05.pt` (or its stand-in); the output size is checked on every call."""
    return load_torchscript(path)


@torch.inference_mode()
def inception_features(net: torch.jit.ScriptModule, images: Any, batch_size: int = 32) -> np.ndarray:
    """Pool3 features [N, 2048] (float64) of uint8 RGB images [N, H, W, 3], the layout of decoded frames."""
    frames = np.asarray(images)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise UserError(f"FID needs uint8 RGB images [N, H, W, 3], got {frames.dtype} {frames.shape}")
    batches = []
    for start in range(0, frames.shape[0], batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size])).permute(0, 3, 1, 2)
        features = net(batch.contiguous(), return_features=True)
        if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
            raise UserError(f"the Inception network returned {tuple(features.shape)}, not [N, {FEATURE_DIM}]")
        batches.append(features.double())
    return torch.cat(batches).numpy()


class InceptionStandIn(nn.Module):
    """Random stand-in with the real file's call signature, input protocol and output sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.input_size = INPUT_SIZE
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 7, stride=4), nn.ReLU(), nn.Conv2d(16, 64, 5, stride=4), nn.ReLU()
        )
        self.features = nn.Linear(64, FEATURE_DIM)
        self.logits = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(
        self,
        img: torch.Tensor,
        return_features: bool = False,
        use_fp16: bool = False,
        no_output_bias: bool = False,
    ) -> torch.Tensor:
        batch, channels, height, width = img.shape
        assert channels == 3
        x = img.to(torch.float32)
        theta = torch.eye(2, 3).repeat(batch, 1, 1)
        theta[:, 0, 2] += 1.0 / width - 1.0 / self.input_size
        theta[:, 1, 2] += 1.0 / height - 1.0 / self.input_size
        grid = F.affine_grid(theta, [batch, channels, self.input_size, self.input_size], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        x = (x - 128.0) / 128.0
        features = torch.relu(self.features(self.stem(x).mean(dim=(2, 3))))
        if return_features:
            return features
        logits = self.logits(features)
        if no_output_bias:
            logits = logits - self.logits.bias
        return torch.softmax(logits, dim=1)


def write_stand_in(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    save_torchscript(InceptionStandIn(), path)
