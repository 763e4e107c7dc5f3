"""The fixed layout of structure tokens: LivePortrait motion parameters ↔ [B, F, K, D] tokens.

Per video frame the motion is a 70-vector `[exp (21×3 row-major: kp0 xyz, kp1 xyz, ...), pitch, yaw,
roll, tx, ty, tz, scale]`. A latent frame f covers video frames 4f-3..4f (f ≥ 1); latent frame 0 is
video frame 0 repeated four times, as the Wan VAE treats the first frame. Token k of a latent frame
holds keypoints k·g..k·g+g-1 (g = 21/K) and, for each of the 4 video frames in order, those
keypoints' exp xyz followed by the 7 global parameters: D = 4·(3g+7), 40 for the default K = 21.
Globals are duplicated across tokens and averaged back by `unpack`. Deterministic, no parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dualforce_core.errors import UserError
from dualforce_core.models.config import ModelConfig
from dualforce_core.timeline import TEMPORAL_STRIDE, first_video_frame, latent_frames_of

# LivePortrait's lip keypoints (the indices its `animation_region == "lip"` path retargets).
LIP_KEYPOINTS: tuple[int, ...] = (6, 12, 14, 17, 19, 20)
NUM_GLOBALS = 7  # pitch, yaw, roll, tx, ty, tz, scale


class StructTokenProjector:
    lip_keypoints = LIP_KEYPOINTS

    def __init__(
        self, num_keypoints: int = 21, tokens_per_frame: int = 21, frames_per_latent: int = TEMPORAL_STRIDE
    ) -> None:
        if num_keypoints % tokens_per_frame:
            raise UserError(
                f"tokens_per_frame ({tokens_per_frame}) must divide num_keypoints ({num_keypoints})"
            )
        self.num_keypoints = num_keypoints
        self.tokens = tokens_per_frame
        self.group = num_keypoints // tokens_per_frame
        self.frames_per_latent = frames_per_latent

    @classmethod
    def from_config(cls, config: ModelConfig) -> StructTokenProjector:
        return cls(config.num_keypoints, config.struct_tokens_per_frame, config.video_frames_per_latent)

    @property
    def param_dim(self) -> int:
        return 3 * self.num_keypoints + NUM_GLOBALS

    @property
    def slot_dim(self) -> int:
        """Channels per video frame inside a token: g keypoints' xyz then the globals."""
        return 3 * self.group + NUM_GLOBALS

    @property
    def token_dim(self) -> int:
        return self.frames_per_latent * self.slot_dim

    def _latent_index(self, latent_frames: int, device: torch.device) -> Tensor:
        f = torch.arange(latent_frames, device=device)[:, None]
        j = torch.arange(self.frames_per_latent, device=device)[None, :]
        # Latent frame 0 is video frame 0 alone: its token repeats it in every slot.
        return torch.where(f == 0, 0, first_video_frame(f, self.frames_per_latent) + j)

    def pack(self, params: Tensor) -> Tensor:
        """[B, T, 70] per-video-frame motion → [B, F, K, D] tokens, T = 1 + 4(F-1)."""
        if params.ndim != 3 or params.shape[-1] != self.param_dim:
            raise UserError(f"motion params must be [B, T, {self.param_dim}], got {list(params.shape)}")
        frames = params.shape[1]
        if (frames - 1) % self.frames_per_latent:
            raise UserError(
                f"motion params need T ≡ 1 (mod {self.frames_per_latent}) video frames, got T={frames}"
            )
        latent = latent_frames_of(frames, self.frames_per_latent)
        per_latent = params[:, self._latent_index(latent, params.device)]  # [B, F, 4, 70]
        exp = per_latent[..., : 3 * self.num_keypoints].unflatten(-1, (self.tokens, 3 * self.group))
        glob = per_latent[..., None, 3 * self.num_keypoints :].expand(-1, -1, -1, self.tokens, -1)
        slots = torch.cat([exp, glob], dim=-1)  # [B, F, 4, K, 3g+7]
        return slots.transpose(2, 3).flatten(3)

    def unpack(self, tokens: Tensor) -> Tensor:
        """[B, F, K, D] tokens → [B, T, 70]; duplicated globals and frame-0 copies are averaged."""
        if tokens.ndim != 4 or tokens.shape[2:] != (self.tokens, self.token_dim):
            raise UserError(
                f"struct tokens must be [B, F, {self.tokens}, {self.token_dim}], got {list(tokens.shape)}"
            )
        slots = tokens.unflatten(-1, (self.frames_per_latent, self.slot_dim)).transpose(
            2, 3
        )  # [B, F, 4, K, s]
        exp = slots[..., : 3 * self.group].flatten(-2)
        glob = slots[..., 3 * self.group :].mean(dim=-2)
        per_latent = torch.cat([exp, glob], dim=-1)  # [B, F, 4, 70]
        first = per_latent[:, :1].mean(dim=2)
        return torch.cat([first, per_latent[:, 1:].flatten(1, 2)], dim=1)

    def lip_channel_index(self) -> tuple[list[int], list[list[int]]]:
        """(token of each lip keypoint, its 4·3 channels: xyz for each of the 4 video frames)."""
        token_idx, channels = [], []
        for kp in self.lip_keypoints:
            within = kp % self.group
            token_idx.append(kp // self.group)
            channels.append(
                [j * self.slot_dim + 3 * within + c for j in range(self.frames_per_latent) for c in range(3)]
            )
        return token_idx, channels

    def lip_channels(self, tokens: Tensor) -> Tensor:
        """Lip keypoints' expression xyz from [B, F, K, D] tokens: [B, F, 6, 4·3] (frame-major)."""
        token_idx, channels = self.lip_channel_index()
        picked = tokens[:, :, token_idx]  # [B, F, 6, D]
        index = torch.tensor(channels, device=tokens.device).expand(*picked.shape[:2], -1, -1)
        return picked.gather(-1, index)
