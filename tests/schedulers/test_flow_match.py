"""The flow-matching path: noising, velocity, x0 recovery and Euler steps agree per frame on both layouts."""

from __future__ import annotations

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.schedulers.flow_match import (
    STRUCT_FRAME_DIM,
    VIDEO_FRAME_DIM,
    add_noise,
    broadcast_sigma,
    euler_step,
    modality_shift,
    predict_x0,
    shift_sigma,
    velocity_target,
)

LAYOUTS = [((2, 3, 4, 5, 6), VIDEO_FRAME_DIM), ((2, 4, 7, 3), STRUCT_FRAME_DIM)]


def _sample(shape: tuple[int, ...], frame_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64)
    noise = torch.randn(shape, generator=g, dtype=torch.float64)
    sigma = torch.rand((shape[0], shape[frame_dim]), generator=g, dtype=torch.float64)
    return x0, noise, sigma


@pytest.mark.parametrize(("shape", "frame_dim"), LAYOUTS)
def test_one_euler_step_to_zero_with_true_velocity_lands_on_x0(
    shape: tuple[int, ...], frame_dim: int
) -> None:
    x0, noise, sigma = _sample(shape, frame_dim)
    x_t = add_noise(x0, noise, sigma, frame_dim)
    v = velocity_target(x0, noise)
    landed = euler_step(x_t, v, sigma, torch.zeros_like(sigma), frame_dim)
    torch.testing.assert_close(
        landed, x0, rtol=1e-12, atol=1e-12
    )  # float64, a few ops on values ~3: ~1e-15 rounding
    torch.testing.assert_close(
        predict_x0(x_t, v, sigma, frame_dim), x0, rtol=1e-12, atol=1e-12
    )  # float64, a few ops on values ~3: ~1e-15 rounding


@pytest.mark.parametrize(("shape", "frame_dim"), LAYOUTS)
def test_euler_step_between_noise_levels_stays_on_the_path(shape: tuple[int, ...], frame_dim: int) -> None:
    x0, noise, sigma = _sample(shape, frame_dim)
    sigma_next = sigma * 0.4
    stepped = euler_step(
        add_noise(x0, noise, sigma, frame_dim), velocity_target(x0, noise), sigma, sigma_next, frame_dim
    )
    torch.testing.assert_close(
        stepped, add_noise(x0, noise, sigma_next, frame_dim), rtol=1e-12, atol=1e-12
    )  # float64, a few ops on values ~3: ~1e-15 rounding


@pytest.mark.parametrize(("shape", "frame_dim"), LAYOUTS)
def test_each_frame_is_noised_with_its_own_sigma(shape: tuple[int, ...], frame_dim: int) -> None:
    x0, noise, sigma = _sample(shape, frame_dim)
    x_t = add_noise(x0, noise, sigma, frame_dim)
    for b in range(shape[0]):
        for f in range(shape[frame_dim]):
            s = sigma[b, f]
            expected = (1 - s) * x0[b].select(frame_dim - 1, f) + s * noise[b].select(frame_dim - 1, f)
            torch.testing.assert_close(x_t[b].select(frame_dim - 1, f), expected)


def test_sigma_endpoints_give_data_and_noise() -> None:
    x0, noise, _ = _sample((2, 4, 7, 3), STRUCT_FRAME_DIM)
    assert torch.equal(add_noise(x0, noise, torch.zeros(2, 4, dtype=torch.float64), 1), x0)
    assert torch.equal(add_noise(x0, noise, torch.ones(2, 4, dtype=torch.float64), 1), noise)


def test_per_sample_sigma_broadcasts_to_every_frame() -> None:
    x = torch.zeros(2, 3, 4, 5, 6)
    out = broadcast_sigma(torch.tensor([0.2, 0.7]), x, VIDEO_FRAME_DIM)
    assert out.shape == (2, 1, 4, 1, 1)
    assert torch.equal(out[1, 0, :, 0, 0], torch.full((4,), 0.7))


def test_sigma_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expected \[B, F\] = \[2, 4\]"):
        broadcast_sigma(torch.zeros(2, 5), torch.zeros(2, 3, 4, 5, 6), VIDEO_FRAME_DIM)


def test_shift_formula_values() -> None:
    sigma = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        shift_sigma(sigma, 3.0), torch.tensor([0.0, 0.5, 0.75, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        shift_sigma(sigma, 2.0), torch.tensor([0.0, 0.4, 2 / 3, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(shift_sigma(sigma, 1.0), sigma)
    assert shift_sigma(sigma, 0.5)[2] < 0.5


def test_non_positive_shift_is_a_user_error() -> None:
    with pytest.raises(UserError, match="shift"):
        shift_sigma(torch.tensor([0.5]), 0.0)


def test_each_modality_reads_its_own_shift() -> None:
    config = DiffusionConfig(shift_video=5.0, shift_struct=1.5)
    assert modality_shift(config, "video") == 5.0
    assert modality_shift(config, "struct") == 1.5
