"""The index maps between video frames, latent frames and audio, and per-video-frame streams pooled onto
the latent frame whose video frames they belong to."""

from __future__ import annotations

import torch

from dualforce_core.timeline import (
    first_video_frame,
    latent_frames_covering,
    latent_frames_of,
    pool_to_latent_frames,
    video_frames_for_samples,
    video_frames_of,
)


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


def test_latent_and_video_frame_counts_map_both_ways() -> None:
    assert [video_frames_of(f) for f in (1, 2, 3)] == [1, 5, 9]
    assert [latent_frames_of(video_frames_of(f)) for f in (1, 2, 7)] == [1, 2, 7]
    assert (
        latent_frames_of(8) == 2 and latent_frames_covering(8) == 3
    )  # the VAE drops 6-8; a generator covers them
    first = first_video_frame(torch.arange(4))
    assert first.tolist() == [0, 1, 5, 9]
    assert video_frames_for_samples(640) == 1 and video_frames_for_samples(641) == 2
