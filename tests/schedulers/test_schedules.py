"""Inference schedules: 1 → 0, shifted, and a pipelined stream that walks every chunk through every step."""

from __future__ import annotations

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.schedulers.flow_match import (
    STRUCT_FRAME_DIM,
    add_noise,
    euler_step,
    shift_sigma,
    velocity_target,
)
from dualforce_core.schedulers.schedules import PipelinedSchedule, chunk_sigma_schedule, sigma_schedule


@pytest.mark.parametrize("steps", [1, 4, 25])
@pytest.mark.parametrize("shift", [1.0, 3.0, 0.5])
def test_schedule_runs_from_one_to_zero_monotonically(steps: int, shift: float) -> None:
    sigmas = sigma_schedule(steps, shift)
    assert sigmas.shape == (steps + 1,)
    assert sigmas[0].item() == 1.0 and sigmas[-1].item() == 0.0
    assert torch.all(sigmas[1:] < sigmas[:-1])


def test_schedule_applies_the_shift() -> None:
    torch.testing.assert_close(sigma_schedule(4, 1.0), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    shifted = sigma_schedule(4, 3.0)
    torch.testing.assert_close(shifted, shift_sigma(torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]), 3.0))
    assert shifted[2].item() == pytest.approx(0.75)


def test_chunk_schedule_moves_all_frames_together() -> None:
    table = chunk_sigma_schedule(3, 2.0, chunk_frames=4)
    assert table.shape == (4, 4)
    assert torch.equal(table, sigma_schedule(3, 2.0)[:, None].expand(-1, 4))


def test_zero_steps_is_a_user_error() -> None:
    with pytest.raises(UserError, match="steps"):
        sigma_schedule(0)


def test_pipeline_ticks_hold_staggered_chunks_noisier_the_newer() -> None:
    schedule = PipelinedSchedule(steps=4, lag=1)
    ticks = list(schedule.ticks(num_chunks=3))
    assert len(ticks) == schedule.num_ticks(3) == 6
    assert schedule.max_in_flight == 4
    third = ticks[2]
    assert third.chunks == (0, 1, 2) and third.step_index == (2, 1, 0)
    torch.testing.assert_close(third.sigma, torch.tensor([0.5, 0.75, 1.0]))
    torch.testing.assert_close(third.sigma_next, torch.tensor([0.25, 0.5, 0.75]))
    assert third.entering == 2 and third.finished is None
    assert ticks[3].finished == 0 and ticks[3].entering is None
    for tick in ticks:
        assert torch.all(tick.sigma[1:] > tick.sigma[:-1])


@pytest.mark.parametrize(("steps", "lag"), [(4, 1), (4, 2), (3, 2), (5, 5)])
def test_every_chunk_takes_every_step_once_in_order(steps: int, lag: int) -> None:
    schedule = PipelinedSchedule(steps, lag, shift=3.0)
    seen: dict[int, list[float]] = {c: [] for c in range(4)}
    finished = []
    for tick in schedule.ticks(num_chunks=4):
        assert len(tick.chunks) <= schedule.max_in_flight
        for c, sigma in zip(tick.chunks, tick.sigma.tolist()):
            seen[c].append(sigma)
        if tick.finished is not None:
            finished.append(tick.finished)
    expected = sigma_schedule(steps, 3.0)[:-1].tolist()
    assert all(sigmas == pytest.approx(expected) for sigmas in seen.values())
    assert finished == [0, 1, 2, 3]


def test_lag_equal_to_steps_is_the_sequential_sampler() -> None:
    schedule = PipelinedSchedule(steps=3, lag=3)
    ticks = list(schedule.ticks(num_chunks=2))
    assert [t.chunks for t in ticks] == [(0,), (0,), (0,), (1,), (1,), (1,)]
    torch.testing.assert_close(
        torch.cat([t.sigma for t in ticks[:3]]), chunk_sigma_schedule(3, 1.0, 1)[:-1, 0]
    )


def test_unbounded_stream_stays_full() -> None:
    schedule = PipelinedSchedule(steps=4, lag=2)
    tick = schedule.tick(101)
    assert tick.chunks == (49, 50) and tick.step_index == (3, 1)
    sigma, sigma_next = tick.frame_sigmas(chunk_frames=3)
    assert sigma.shape == sigma_next.shape == (6,)
    assert torch.equal(sigma[:3], tick.sigma[:1].expand(3))


def test_pipelined_euler_with_true_velocity_recovers_every_chunk() -> None:
    chunk_frames, num_chunks = 2, 3
    schedule = PipelinedSchedule(steps=4, lag=1, shift=3.0)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, chunk_frames * num_chunks, 5, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x = x0.clone()
    for tick in schedule.ticks(num_chunks):
        frames = [f for c in tick.chunks for f in range(c * chunk_frames, (c + 1) * chunk_frames)]
        sigma, sigma_next = (s.double()[None] for s in tick.frame_sigmas(chunk_frames))
        if tick.entering is not None:
            start = tick.entering * chunk_frames
            x[:, start : start + chunk_frames] = noise[:, start : start + chunk_frames]
        current = x[:, frames]
        torch.testing.assert_close(
            current, add_noise(x0[:, frames], noise[:, frames], sigma, STRUCT_FRAME_DIM)
        )
        v = velocity_target(x0[:, frames], noise[:, frames])
        x[:, frames] = euler_step(current, v, sigma, sigma_next, STRUCT_FRAME_DIM)
    torch.testing.assert_close(
        x, x0, rtol=1e-12, atol=1e-12
    )  # float64, a few ops on values ~3: ~1e-15 rounding


def test_bad_lag_and_past_the_end_ticks_are_user_errors() -> None:
    with pytest.raises(UserError, match="lag"):
        PipelinedSchedule(steps=2, lag=3)
    with pytest.raises(UserError, match="past the end"):
        PipelinedSchedule(steps=2, lag=1).tick(5, num_chunks=2)
