"""Per-modality velocity MSE: the reference frame never counts; a lone reference frame gives 0, not NaN."""

from __future__ import annotations

import pytest
import torch

from dualforce_core.losses.flow_matching import flow_matching_loss

LAYOUTS = [((2, 3, 4, 5, 6), 2), ((2, 4, 7, 3), 1)]


@pytest.mark.parametrize(("shape", "frame_dim"), LAYOUTS)
def test_reference_frame_does_not_change_the_loss(shape: tuple[int, ...], frame_dim: int) -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    base = flow_matching_loss(pred, target, frame_dim)
    changed = pred.clone()
    changed.select(frame_dim, 0).add_(100.0)
    assert flow_matching_loss(changed, target, frame_dim) == base
    changed.select(frame_dim, 1).add_(1.0)
    assert flow_matching_loss(changed, target, frame_dim) > base
    assert flow_matching_loss(changed, target, frame_dim, mask_reference=False) > 100


@pytest.mark.parametrize(("shape", "frame_dim"), LAYOUTS)
def test_equal_frame_sizes_give_the_plain_mse_of_generated_frames(
    shape: tuple[int, ...], frame_dim: int
) -> None:
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    generated = torch.arange(1, shape[frame_dim])
    expected = (
        (pred.index_select(frame_dim, generated) - target.index_select(frame_dim, generated)).square().mean()
    )
    torch.testing.assert_close(flow_matching_loss(pred, target, frame_dim), expected)


def test_frame_weights_select_frames() -> None:
    pred, target = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    pred[:, 2] = 3.0
    pred[:, 1] = 1.0
    only_second = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert flow_matching_loss(pred, target, 1, weights=only_second).item() == pytest.approx(1.0)
    per_sample = torch.tensor([1.0, 0.0])
    assert flow_matching_loss(pred, target, 1, weights=per_sample).item() == pytest.approx(5.0)


def test_only_the_reference_frame_gives_zero_with_gradient() -> None:
    pred = torch.randn(2, 1, 4, requires_grad=True)
    loss = flow_matching_loss(pred, torch.randn(2, 1, 4), 1)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert pred.grad is not None and torch.equal(pred.grad, torch.zeros_like(pred))


def test_half_precision_inputs_give_an_fp32_loss() -> None:
    pred, target = torch.randn(1, 3, 2, dtype=torch.bfloat16), torch.randn(1, 3, 2, dtype=torch.bfloat16)
    assert flow_matching_loss(pred, target, 1).dtype == torch.float32


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        flow_matching_loss(torch.zeros(1, 3, 2), torch.zeros(1, 4, 2), 1)
    with pytest.raises(ValueError, match=r"weights have shape"):
        flow_matching_loss(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), 1, weights=torch.ones(1, 2))
