"""LivePortrait's motion extractor (the paper's M): ConvNeXt-V2-tiny backbone + pose/keypoint heads.

Our implementation of the architecture in KwaiVGI/LivePortrait `src/modules/{motion_extractor,convnextv2}.py`.
Attribute names follow that code so the official `motion_extractor.pth` loads with `strict=True`
(its keys start with `detector.`). Input: RGB in [0, 1], 256×256 (LivePortrait's `input_shape`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dualforce_core.motion_layout import NUM_KP

NUM_BINS = 66
INPUT_SIZE = 256
DEPTHS = (3, 3, 9, 3)
DIMS = (96, 192, 384, 768)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of [N, C, H, W] (ConvNeXt's stem and downsampling norm)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) on channels-last features."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class Block(nn.Module):
    """Depthwise 7×7 conv → LN → 4× MLP with GRN, residual (no drop path: inference only)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2Motion(nn.Module):
    """ConvNeXt-V2 trunk, global average pool, then one linear head per motion quantity."""

    def __init__(
        self,
        depths: tuple[int, ...] = DEPTHS,
        dims: tuple[int, ...] = DIMS,
        num_kp: int = NUM_KP,
        num_bins: int = NUM_BINS,
    ):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
        )
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block(d) for _ in range(n))) for d, n in zip(dims, depths)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc_kp = nn.Linear(dims[-1], 3 * num_kp)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], num_bins)
        self.fc_yaw = nn.Linear(dims[-1], num_bins)
        self.fc_roll = nn.Linear(dims[-1], num_bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        h = self.norm(x.mean(dim=(-2, -1)))
        return {
            "kp": self.fc_kp(h),
            "pitch": self.fc_pitch(h),
            "yaw": self.fc_yaw(h),
            "roll": self.fc_roll(h),
            "t": self.fc_t(h),
            "exp": self.fc_exp(h),
            "scale": self.fc_scale(h),
        }


class MotionExtractor(nn.Module):
    """The official wrapper: the whole network sits under `detector`, as in the checkpoint's keys."""

    def __init__(self) -> None:
        super().__init__()
        self.detector = ConvNeXtV2Motion()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(x)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """LivePortrait's head-pose decoding: expectation over 66 bins of 3°, centred by 97.5° → [N]."""
    idx = torch.arange(logits.shape[-1], dtype=torch.float32, device=logits.device)
    return (logits.float().softmax(dim=-1) * idx).sum(dim=-1) * 3 - 97.5


def motion_vector(raw: dict[str, torch.Tensor]) -> torch.Tensor:
    """Raw head outputs → [N, 70] in `MOTION_LAYOUT` order (exp row-major 21×3, degrees, t, scale)."""
    angles = [bins_to_degrees(raw[k])[:, None] for k in ("pitch", "yaw", "roll")]
    return torch.cat([raw["exp"].float(), *angles, raw["t"].float(), raw["scale"].float()], dim=1)


def load_motion_extractor(path: Path) -> MotionExtractor:
    """The official checkpoint format: a bare state dict, loaded strictly and without pickled code.
    Built on the meta device so no time goes into a random init that the load overwrites."""
    with torch.device("meta"):
        model = MotionExtractor()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True, assign=True)
    return model.eval()


def build_stand_in(target: Path, seed: int) -> None:
    """Random weights in the official file format (the full-size architecture: ~28M parameters)."""
    torch.manual_seed(seed)
    torch.save(MotionExtractor().state_dict(), target)
