"""Lip-sync InfoNCE: learns to tell aligned from misaligned audio, and stays finite with few frames."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from dualforce_core.losses.lipsync import LipSyncContrastiveLoss

AUDIO_DIM, LIP_DIM = 12, 6


def _correlated(
    generator: torch.Generator, batch: int = 6, frames: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lips are a fixed linear read-out of the audio of the same frame, plus noise."""
    audio = torch.randn(batch, frames, AUDIO_DIM, generator=generator)
    mixing = torch.randn(AUDIO_DIM, LIP_DIM, generator=torch.Generator().manual_seed(99))
    lip = audio @ mixing / AUDIO_DIM**0.5 + 0.1 * torch.randn(batch, frames, LIP_DIM, generator=generator)
    return lip, audio


def _loss(window: int = 2, max_shift: int = 2, cross_sample: bool = True) -> LipSyncContrastiveLoss:
    torch.manual_seed(0)
    return LipSyncContrastiveLoss(
        LIP_DIM,
        AUDIO_DIM,
        window=window,
        max_shift=max_shift,
        embed_dim=16,
        hidden=32,
        cross_sample=cross_sample,
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add synchronisation, which is slow on a loaded shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_training_makes_aligned_audio_score_better_than_shuffled() -> None:
    module = _loss()
    optimiser = torch.optim.Adam(module.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    lip, audio = _correlated(g)
    initial = module(lip, audio).loss.item()
    for _ in range(60):
        lip, audio = _correlated(g)
        out = module(lip, audio)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
    with torch.no_grad():
        lip, audio = _correlated(torch.Generator().manual_seed(1))
        aligned = module(lip, audio)
        shuffled = module(lip, audio[:, torch.randperm(audio.shape[1], generator=g)])
    assert not aligned.skipped
    assert aligned.loss.item() < 0.5 * initial
    assert aligned.loss.item() < shuffled.loss.item() - 1.0
    assert aligned.accuracy.item() > 0.9 > shuffled.accuracy.item()


def test_too_few_frames_is_skipped_with_zero_loss_and_gradient() -> None:
    module = _loss(window=2, cross_sample=False)
    lip = torch.randn(3, 3, LIP_DIM, requires_grad=True)
    out = module(lip, torch.randn(3, 3, AUDIO_DIM))
    assert out.skipped and out.loss.item() == 0.0
    out.loss.backward()
    assert lip.grad is not None and torch.all(lip.grad == 0)
    assert module(torch.randn(2, 1, LIP_DIM), torch.randn(2, 1, AUDIO_DIM)).skipped


def test_a_single_clip_needs_one_window_plus_a_shifted_one() -> None:
    module = _loss(window=2, max_shift=3, cross_sample=True)
    assert module(torch.randn(1, 3, LIP_DIM), torch.randn(1, 3, AUDIO_DIM)).skipped
    lip = torch.randn(1, 4, LIP_DIM, requires_grad=True)
    out = module(lip, torch.randn(1, 4, AUDIO_DIM))
    assert not out.skipped and torch.isfinite(out.loss)
    out.loss.backward()
    assert lip.grad is not None and torch.isfinite(lip.grad).all() and lip.grad.abs().sum() > 0


def test_other_clips_give_negatives_when_the_clip_is_one_window_long() -> None:
    module = _loss(window=2, cross_sample=True)
    out = module(torch.randn(3, 2, LIP_DIM), torch.randn(3, 2, AUDIO_DIM))
    assert not out.skipped and torch.isfinite(out.loss) and out.loss.item() > 0
    assert 0.0 <= out.accuracy.item() <= 1.0
