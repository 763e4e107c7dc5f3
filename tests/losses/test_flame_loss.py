"""FLAME alignment: L2 over frames that have fits; no fits means 0 and a single notice per process."""

from __future__ import annotations

import logging

import pytest
import torch

from dualforce_core.losses import flame
from dualforce_core.losses.flame import FlameHead, flame_alignment_loss


@pytest.fixture
def fresh_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> pytest.LogCaptureFixture:
    """The once-per-process notice starts unannounced, as in a new process."""
    monkeypatch.setattr(flame, "_announced_missing_targets", False)
    caplog.set_level(logging.INFO, logger=flame.__name__)
    return caplog


def test_no_targets_give_zero_and_one_notice(fresh_process: pytest.LogCaptureFixture) -> None:
    pred = torch.randn(2, 3, 53, requires_grad=True)
    first = flame_alignment_loss(pred, None)
    second = flame_alignment_loss(pred, torch.randn(2, 3, 53), valid_mask=torch.tensor([False, False]))
    assert first.item() == 0.0 and second.item() == 0.0
    (first + second).backward()
    assert pred.grad is not None and torch.equal(pred.grad, torch.zeros_like(pred))
    records = [r for r in fresh_process.records if r.name == flame.__name__]
    assert len(records) == 1 and "FLAME" in records[0].getMessage()


def test_loss_is_the_mse_over_valid_frames_even_with_nan_elsewhere(
    fresh_process: pytest.LogCaptureFixture,
) -> None:
    pred = torch.randn(2, 4, 5, requires_grad=True)
    target = torch.randn(2, 4, 5)
    target[1] = float("nan")
    loss = flame_alignment_loss(pred, target, valid_mask=torch.tensor([True, False]))
    torch.testing.assert_close(loss, (pred[0] - target[0]).square().mean())
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and torch.all(pred.grad[1] == 0)
    frame_mask = torch.tensor([[True, False, True, False], [False, False, False, False]])
    torch.testing.assert_close(
        flame_alignment_loss(pred, target, frame_mask), (pred[0, ::2] - target[0, ::2]).square().mean()
    )
    assert not fresh_process.records


def test_head_maps_structure_tokens_to_flame_parameters() -> None:
    head = FlameHead(in_features=21 * 12, flame_dim=53)
    assert head(torch.randn(2, 3, 21, 12)).shape == (2, 3, 53)
    with pytest.raises(ValueError, match="expects 252 features"):
        head(torch.randn(2, 3, 20, 12))
