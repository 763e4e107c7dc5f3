"""The training objective: what one batch costs, shared by the trainer, its benchmark and evaluation.

Per batch: a per-frame σ per modality (reference frame clean), video latents and structure tokens noised
along the flow path, audio (and, if configured, structure) dropped for classifier-free guidance, then the
velocity regression plus the lip-sync and FLAME auxiliaries. Every random draw comes from the caller's
generator, so a resumed run draws what the uninterrupted one would.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from dualforce_core.config import DualForceConfig
from dualforce_core.losses import DualForceLoss, LossInputs, LossOutput
from dualforce_core.models import LIP_KEYPOINTS, ModelConfig
from dualforce_core.schedulers.flow_match import STRUCT_FRAME_DIM, VIDEO_FRAME_DIM, add_noise, velocity_target
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.timeline import pool_to_latent_frames


def lip_tokens(config: ModelConfig) -> list[int]:
    """Structure tokens holding LivePortrait's lip keypoints (token k holds keypoints k·g..k·g+g-1)."""
    group = config.num_keypoints // config.struct_tokens_per_frame
    return sorted({kp // group for kp in LIP_KEYPOINTS})


def build_loss(config: DualForceConfig, token_dim: int, has_flame: bool) -> DualForceLoss:
    """The objective with the configured weights; FLAME off when the data has no FLAME rows."""
    mc, weights = config.model, config.train.loss_weights
    if not has_flame:
        weights = weights.model_copy(update={"flame": 0.0})
    return DualForceLoss(
        weights,
        struct_tokens=mc.struct_tokens_per_frame,
        struct_token_dim=token_dim,
        audio_dim=mc.audio_dim,
        lip_tokens=lip_tokens(mc),
        flame_dim=mc.flame_dim,
    )


def forward_loss(
    model: nn.Module,
    loss_fn: DualForceLoss,
    batch: dict[str, Any],
    sigma_sampler: SigmaSampler,
    generator: torch.Generator,
    config: DualForceConfig,
    autocast: bool = False,
    device: torch.device | None = None,
) -> tuple[LossOutput, int]:
    """The training objective of one batch (`video`, `struct`, `audio`, optional `flame`/`flame_mask`),
    and the number of tokens it fed the model. Every random draw comes from `generator` (CPU).
    `autocast`: the model's forward in bf16 autocast (`parallelize.bf16_compute` says when).
    `device`: where to compute (default: the parameters'; CPU-offloaded parameters are not there)."""
    cfg, mc, g = config.train, config.model, generator
    dev = device if device is not None else next(model.parameters()).device
    video = batch["video"].to(dev)
    struct = batch["struct"].to(dev)
    audio = batch["audio"].to(dev)
    b, _, frames, height, width = video.shape
    sigmas = sigma_sampler.sample(b, frames, g, dev)
    drop_audio = torch.rand(b, generator=g) < cfg.audio_dropout
    drop_struct = torch.rand(b, generator=g) < cfg.struct_dropout
    # Structure dropout: the generated frames' structure is pure noise, so the video tower learns to
    # work without it (the unconditional branch of structure guidance).
    generated = torch.arange(frames) > 0
    sigma_struct = torch.where((drop_struct[:, None] & generated).to(dev), 1.0, sigmas.struct)
    noise_v = torch.randn(video.shape, generator=g).to(dev)
    noise_s = torch.randn(struct.shape, generator=g).to(dev)
    noisy_v = add_noise(video, noise_v, sigmas.video, VIDEO_FRAME_DIM)
    noisy_s = add_noise(struct, noise_s, sigma_struct, STRUCT_FRAME_DIM)
    amp = torch.autocast(dev.type, torch.bfloat16) if autocast else contextlib.nullcontext()
    with amp:
        out = model(
            video=noisy_v,
            struct=noisy_s,
            sigma_video=sigmas.video,
            sigma_struct=sigma_struct,
            audio=audio,
            audio_drop=drop_audio.to(dev),
        )
    flame = batch.get("flame")
    loss = loss_fn(
        LossInputs(
            pred_video=out.video,
            target_video=velocity_target(video, noise_v),
            pred_struct=out.struct,
            target_struct=velocity_target(struct, noise_s),
            noisy_struct=noisy_s,
            sigma_struct=sigma_struct,
            # The lip-sync loss's view: HuBERT layers averaged, then each latent frame's tokens.
            audio=pool_to_latent_frames(
                audio.float().mean(dim=2),
                frames,
                mc.video_frames_per_latent,
                mc.audio_tokens_per_video_frame,
            ),
            flame_target=None if flame is None else flame.to(dev),
            flame_mask=None if flame is None else batch["flame_mask"].to(dev),
        )
    )
    ph, pw = mc.patch_size[1:]
    tokens = b * frames * ((height // ph) * (width // pw) + mc.struct_tokens_per_frame)
    return loss, tokens
