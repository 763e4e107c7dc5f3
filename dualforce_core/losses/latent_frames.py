"""Time alignment of per-video-frame streams (audio tokens, FLAME fits) to the latent-frame grid.

The Wan VAE maps video frame 0 to latent frame 0 alone and then every `frames_per_latent` video frames
to one latent frame, so latent frame f ≥ 1 covers video frames 4f-3..4f. Auxiliary losses compare per
latent frame, so their per-video-frame inputs are averaged over exactly that span.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pool_to_latent_frames(
    sequence: Tensor, latent_frames: int, frames_per_latent: int = 4, steps_per_video_frame: int = 1
) -> Tensor:
    """[B, T, D] time-major from video frame 0 → [B, F, D], each latent frame the mean of its own span.

    `steps_per_video_frame` is the stream's rate over the video's (HuBERT at 50 Hz vs 25 fps: 2; FLAME
    fits: 1). Latent frames past the end of the sequence get zeros. For HuBERT hidden states
    [B, T_a, L, D_a] average the layers first: `pool_to_latent_frames(h.mean(2), F, steps_per_video_frame=2)`.
    """
    if sequence.ndim != 3:
        raise ValueError(f"sequence must be [B, T, D], got {tuple(sequence.shape)}")
    frame = torch.arange(latent_frames, device=sequence.device)[:, None]
    first = torch.where(frame == 0, 0, frames_per_latent * (frame - 1) + 1)
    last = torch.where(frame == 0, 0, frames_per_latent * frame)
    video_frame = torch.arange(sequence.shape[1], device=sequence.device)[None, :] // steps_per_video_frame
    member = ((video_frame >= first) & (video_frame <= last)).to(sequence.dtype)
    member = member / member.sum(dim=1, keepdim=True).clamp(min=1)
    return torch.einsum("ft,btd->bfd", member, sequence)
