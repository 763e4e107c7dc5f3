"""The training objective: both towers' flow-matching losses plus the lip-sync and FLAME auxiliaries.

Called over tensors, not over the model, so the trainer (or a test) can feed any forward's outputs. The
module owns the auxiliaries' learned heads: optimise `DualForceLoss.parameters()` together with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dualforce_core.errors import UserError
from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.losses.flame import FlameHead, flame_alignment_loss
from dualforce_core.losses.flow_matching import flow_matching_loss
from dualforce_core.losses.lipsync import LipSyncContrastiveLoss
from dualforce_core.schedulers.flow_match import STRUCT_FRAME_DIM, VIDEO_FRAME_DIM, predict_x0

if TYPE_CHECKING:
    # Annotation only: a config section imported first at runtime hits the config package's import cycle.
    from dualforce_core.training.config import LossWeights


@dataclass
class LossInputs:
    """One batch's predictions and targets.

    Velocities: video [B, C, F, h, w], structure [B, F, K, D]. The auxiliaries work on the predicted clean
    structure, rebuilt from `noisy_struct` (the structure tower's input x_σ) and `sigma_struct` [B, F].
    `audio` is one feature vector per latent frame [B, F, D_a] (see `pool_to_latent_frames`);
    `flame_target` [B, F, flame_dim] with `flame_mask` [B] or [B, F] marks which clips or frames have
    FLAME fits.
    """

    pred_video: Tensor
    target_video: Tensor
    pred_struct: Tensor
    target_struct: Tensor
    noisy_struct: Tensor | None = None
    sigma_struct: Tensor | None = None
    audio: Tensor | None = None
    flame_target: Tensor | None = None
    flame_mask: Tensor | None = None


@dataclass
class LossOutput:
    total: Tensor
    components: dict[str, float] = field(default_factory=dict)


class DualForceLoss(nn.Module):
    """Weighted sum `video + struct + lipsync + flame`; an auxiliary with weight 0 is neither built nor run.

    Lip sync compares the structure tokens `lip_tokens` (one token per keypoint: the model package's lip
    keypoint indices) of generated frames (the reference frame is left out) with the audio. The FLAME head
    reads every frame's full predicted clean structure.
    """

    def __init__(
        self,
        weights: LossWeights,
        *,
        struct_tokens: int,
        struct_token_dim: int,
        audio_dim: int,
        lip_tokens: Sequence[int] = (),
        flame_dim: int = FLAME_DIM,
        lipsync_window: int = 2,
        lipsync_max_shift: int = 3,
    ) -> None:
        super().__init__()
        self.weights = weights
        self.lip_tokens = tuple(lip_tokens)
        if any(not 0 <= i < struct_tokens for i in self.lip_tokens):
            raise UserError(
                f"lip token indices {self.lip_tokens} fall outside the {struct_tokens} structure tokens"
            )
        self.lipsync: LipSyncContrastiveLoss | None = None
        if weights.lipsync > 0:
            if not self.lip_tokens:
                raise UserError("loss_weights.lipsync > 0 needs the lip keypoint token indices (lip_tokens)")
            self.lipsync = LipSyncContrastiveLoss(
                len(self.lip_tokens) * struct_token_dim,
                audio_dim,
                window=lipsync_window,
                max_shift=lipsync_max_shift,
            )
        self.flame_head = (
            FlameHead(struct_tokens * struct_token_dim, flame_dim) if weights.flame > 0 else None
        )

    def forward(self, batch: LossInputs) -> LossOutput:
        w = self.weights
        video = flow_matching_loss(batch.pred_video, batch.target_video, VIDEO_FRAME_DIM)
        struct = flow_matching_loss(batch.pred_struct, batch.target_struct, STRUCT_FRAME_DIM)
        total = w.video * video + w.struct * struct
        zero = video.detach() * 0.0
        lipsync, lipsync_accuracy, lipsync_skipped, flame = zero, zero, zero, zero

        if self.lipsync is not None or self.flame_head is not None:
            clean = self._clean_structure(batch)
            if self.lipsync is not None:
                if batch.audio is None:
                    raise ValueError(
                        "the lip-sync loss needs audio features per latent frame (LossInputs.audio)"
                    )
                lip = clean[:, 1:, list(self.lip_tokens)].flatten(2)
                out = self.lipsync(lip, batch.audio[:, 1:])
                lipsync, lipsync_accuracy = out.loss, out.accuracy
                lipsync_skipped = zero + float(out.skipped)
                total = total + w.lipsync * lipsync
            if self.flame_head is not None:
                flame = flame_alignment_loss(self.flame_head(clean), batch.flame_target, batch.flame_mask)
                total = total + w.flame * flame

        names = ("total", "video", "struct", "lipsync", "lipsync_accuracy", "lipsync_skipped", "flame")
        values = torch.stack([total, video, struct, lipsync, lipsync_accuracy, lipsync_skipped, flame])
        return LossOutput(total, dict(zip(names, values.detach().float().cpu().tolist())))

    @staticmethod
    def _clean_structure(batch: LossInputs) -> Tensor:
        if batch.noisy_struct is None or batch.sigma_struct is None:
            raise ValueError(
                "lip-sync and FLAME losses need noisy_struct and sigma_struct to rebuild clean structure"
            )
        return predict_x0(batch.noisy_struct, batch.pred_struct, batch.sigma_struct, STRUCT_FRAME_DIM)
