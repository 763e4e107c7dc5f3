"""Training σ: continuous, independent per frame and modality, clean reference, shared at the set rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.schedulers.sigma_sampler import SigmaSampler

N = 20000


def _draw(
    seed: int = 0, batch: int = N, frames: int = 4, **config: float | str
) -> tuple[torch.Tensor, torch.Tensor]:
    sampler = SigmaSampler(DiffusionConfig(**config))
    video, struct = sampler.sample(batch, frames, torch.Generator().manual_seed(seed))
    return video, struct


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_reference_frame_is_clean_and_the_rest_in_range() -> None:
    video, struct = _draw(batch=256, frames=5)
    for sigma in (video, struct):
        assert sigma.shape == (256, 5)
        assert torch.all(sigma[:, 0] == 0)
        assert torch.all((sigma[:, 1:] > 0) & (sigma[:, 1:] < 1))


def test_same_seed_same_draws_and_other_seed_other_draws() -> None:
    a, b, c = _draw(seed=3, batch=8), _draw(seed=3, batch=8), _draw(seed=4, batch=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_sigma_is_continuous() -> None:
    video, struct = _draw(batch=500, frames=5, shared_sigma_prob=0.0)
    generated = torch.cat([video[:, 1:].flatten(), struct[:, 1:].flatten()])
    assert generated.unique().numel() == generated.numel()


def test_frames_and_modalities_are_independent() -> None:
    video, struct = _draw(shared_sigma_prob=0.0, sigma_sampler="uniform")
    assert abs(_corr(video[:, 1], video[:, 2])) < 0.03
    assert abs(_corr(video[:, 1], struct[:, 1])) < 0.03
    assert abs(_corr(video[:, 2], struct[:, 3])) < 0.03
    assert not torch.equal(video[:, 1:], struct[:, 1:])


def test_shared_sigma_probability_is_respected_per_modality() -> None:
    p = 0.3
    video, struct = _draw(shared_sigma_prob=p, frames=5)
    shared_v = (video[:, 1:] == video[:, 1:2]).all(dim=1).float()
    shared_s = (struct[:, 1:] == struct[:, 1:2]).all(dim=1).float()
    tolerance = 4 * math.sqrt(p * (1 - p) / N)
    assert abs(shared_v.mean().item() - p) < tolerance
    assert abs(shared_s.mean().item() - p) < tolerance
    assert abs((shared_v * shared_s).mean().item() - p * p) < 4 * math.sqrt(p * p / N)


def test_never_and_always_shared() -> None:
    never, _ = _draw(batch=500, shared_sigma_prob=0.0)
    always, _ = _draw(batch=500, shared_sigma_prob=1.0)
    assert not (never[:, 1:] == never[:, 1:2]).all(dim=1).any()
    assert (always[:, 1:] == always[:, 1:2]).all()


def test_uniform_moments_and_shift() -> None:
    unshifted, _ = _draw(sigma_sampler="uniform", shift_video=1.0, shared_sigma_prob=0.0)
    x = unshifted[:, 1:].flatten()
    assert abs(x.mean().item() - 0.5) < 0.005
    assert abs(x.var().item() - 1 / 12) < 0.002
    shifted, _ = _draw(sigma_sampler="uniform", shift_video=3.0, shared_sigma_prob=0.0)
    # E[3u / (1 + 2u)] for u ~ U(0, 1) = 1.5 - 0.75 ln 3.
    assert abs(shifted[:, 1:].mean().item() - (1.5 - 0.75 * math.log(3))) < 0.005


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (0.8, 0.5)])
def test_logit_normal_moments(mean: float, std: float) -> None:
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    s = 1 / (1 + np.exp(-(mean + std * z)))
    expected_mean = float((w * s).sum())
    expected_var = float((w * s**2).sum()) - expected_mean**2
    video, _ = _draw(
        sigma_sampler="logit_normal", logit_mean=mean, logit_std=std, shift_video=1.0, shared_sigma_prob=0.0
    )
    x = video[:, 1:].flatten()
    assert abs(x.mean().item() - expected_mean) < 0.005
    assert abs(x.var().item() - expected_var) < 0.002
    uniform, _ = _draw(sigma_sampler="uniform", shift_video=1.0, shared_sigma_prob=0.0)
    assert x.var().item() < uniform[:, 1:].var().item()


def test_each_modality_gets_its_own_shift() -> None:
    video, struct = _draw(shift_video=1.0, shift_struct=5.0, shared_sigma_prob=0.0)
    assert struct[:, 1:].mean().item() > video[:, 1:].mean().item() + 0.2


def test_single_frame_is_only_the_reference() -> None:
    video, struct = _draw(batch=3, frames=1)
    assert torch.equal(video, torch.zeros(3, 1)) and torch.equal(struct, torch.zeros(3, 1))


def test_empty_batch_is_a_user_error() -> None:
    with pytest.raises(UserError, match="at least one"):
        _draw(batch=0)
