"""Per-video-frame streams land on the latent frame whose video frames they belong to."""

from __future__ import annotations

import torch

from dualforce_core.losses.latent_frames import pool_to_latent_frames


def test_audio_tokens_are_averaged_over_each_latent_frames_video_frames() -> None:
    # 3 latent frames = video frames 0 | 1-4 | 5-8 = audio tokens 0-1 | 2-9 | 10-17 at 2 tokens per frame.
    audio = torch.arange(18, dtype=torch.float32)[None, :, None].expand(1, 18, 2)
    pooled = pool_to_latent_frames(audio, latent_frames=3, steps_per_video_frame=2)
    assert pooled.shape == (1, 3, 2)
    torch.testing.assert_close(pooled[0, :, 0], torch.tensor([0.5, 5.5, 13.5]))


def test_per_video_frame_stream_and_a_short_tail() -> None:
    flame = torch.arange(7, dtype=torch.float32)[None, :, None]
    pooled = pool_to_latent_frames(flame, latent_frames=3)
    torch.testing.assert_close(pooled[0, :, 0], torch.tensor([0.0, 2.5, 5.5]))
    empty_tail = pool_to_latent_frames(flame[:, :5], latent_frames=3)
    torch.testing.assert_close(empty_tail[0, :, 0], torch.tensor([0.0, 2.5, 0.0]))
