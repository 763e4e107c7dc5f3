"""The one clock every modality runs on: video at 25 fps, speech at 16 kHz, HuBERT at 50 Hz, Wan-VAE latents.

The Wan VAE is causal in time: video frame 0 is latent frame 0 on its own (the reference portrait), then
every `TEMPORAL_STRIDE` video frames make one latent frame, so latent frame f ≥ 1 covers video frames
4f-3..4f. Every count that crosses modalities is converted here, so a rate or a stride is one edit.

Torch is imported only by `pool_to_latent_frames`: the CLI and the synthetic data read these constants
without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
AUDIO_TOKENS_PER_FRAME = 2  # HuBERT's 50 Hz over 25 fps
SAMPLES_PER_TOKEN = SAMPLES_PER_FRAME // AUDIO_TOKENS_PER_FRAME  # 320: HuBERT's hop
TEMPORAL_STRIDE = 4  # video frames per latent frame after frame 0
SPATIAL_STRIDE = 8  # pixels per latent cell, each way


def latent_frames_of(video_frames: int, stride: int = TEMPORAL_STRIDE) -> int:
    """Latent frames the VAE encodes from `video_frames` (1 mod 4; it drops any rest): 1 + (T - 1) / 4."""
    return 1 + (video_frames - 1) // stride


def latent_frames_covering(video_frames: int, stride: int = TEMPORAL_STRIDE) -> int:
    """Latent frames to generate so that their video covers `video_frames` (the last may run past it)."""
    return 1 + -(-(video_frames - 1) // stride)


def video_frames_of(latent_frames: int, stride: int = TEMPORAL_STRIDE) -> int:
    """Video frames decoded from `latent_frames`: 1 + 4(F - 1)."""
    return 1 + stride * (latent_frames - 1)


def first_video_frame(latent_frame: Tensor, stride: int = TEMPORAL_STRIDE) -> Tensor:
    """First video frame of each latent frame: 0 for frame 0, 4f - 3 after it (the last is 4f)."""
    return (stride * latent_frame - (stride - 1)).clamp(min=0)


def video_frames_for_samples(samples: int) -> int:
    """Video frames that cover `samples` of 16 kHz speech (a started frame counts)."""
    return -(-samples // SAMPLES_PER_FRAME)


def pool_to_latent_frames(
    sequence: Tensor, latent_frames: int, stride: int = TEMPORAL_STRIDE, steps_per_video_frame: int = 1
) -> Tensor:
    """[B, T, D] time-major from video frame 0 → [B, F, D], each latent frame the mean of its own span.

    Auxiliary losses compare per latent frame, so their per-video-frame inputs are averaged over exactly
    the video frames that latent frame covers. `steps_per_video_frame` is the stream's rate over the
    video's (HuBERT: `AUDIO_TOKENS_PER_FRAME`; FLAME fits: 1). Latent frames past the end of the sequence
    get zeros. For HuBERT hidden states [B, T_a, L, D_a] average the layers first:
    `pool_to_latent_frames(h.mean(2), F, steps_per_video_frame=AUDIO_TOKENS_PER_FRAME)`.
    """
    import torch

    if sequence.ndim != 3:
        raise ValueError(f"sequence must be [B, T, D], got {tuple(sequence.shape)}")
    frame = torch.arange(latent_frames, device=sequence.device)[:, None]
    first, last = first_video_frame(frame, stride), stride * frame
    video_frame = torch.arange(sequence.shape[1], device=sequence.device)[None, :] // steps_per_video_frame
    member = ((video_frame >= first) & (video_frame <= last)).to(sequence.dtype)
    member = member / member.sum(dim=1, keepdim=True).clamp(min=1)
    return torch.einsum("ft,btd->bfd", member, sequence)
