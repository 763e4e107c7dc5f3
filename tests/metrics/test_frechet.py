from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from dualforce_core.errors import UserError
from dualforce_core.metrics import feature_statistics, frechet_distance


def scipy_reference(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The pytorch-fid / StyleGAN route: sqrtm of the product, eps·I retry, real part."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def gaussian_pair(samples: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim))
    a = rng.normal(size=(samples, dim)) @ mixing
    b = rng.normal(size=(samples, dim)) @ (mixing * 1.3) + 0.4
    return a, b


@pytest.mark.parametrize(
    ("samples", "dim"),
    [(400, 16), (12, 48), (64, 64)],  # well conditioned, rank 11 of 48 (N < D), rank 63 of 64
)
def test_agrees_with_scipy_sqrtm_reference_including_near_singular(samples: int, dim: int) -> None:
    a, b = gaussian_pair(samples, dim, seed=dim)
    stats = (*feature_statistics(a), *feature_statistics(b))
    expected = scipy_reference(*stats)
    assert frechet_distance(*stats) == pytest.approx(expected, rel=1e-6)


def test_matches_closed_form_for_diagonal_covariances_with_tiny_variances() -> None:
    rng = np.random.default_rng(1)
    var1, var2 = rng.uniform(0, 2, 20), rng.uniform(0, 2, 20)
    var1[:5] = [0.0, 1e-14, 1e-12, 0.0, 1e-10]  # singular and near-singular directions
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)


def test_a_set_against_itself_is_zero() -> None:
    a, _ = gaussian_pair(30, 40, seed=2)  # rank-deficient covariance
    mu, sigma = feature_statistics(a)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8 * np.trace(sigma))


def test_invariant_to_rotation_translation_and_argument_order() -> None:
    a, b = gaussian_pair(100, 12, seed=3)
    base = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    rotation, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(12, 12)))
    shift = np.arange(12.0)
    moved = frechet_distance(
        *feature_statistics(a @ rotation + shift), *feature_statistics(b @ rotation + shift)
    )
    swapped = frechet_distance(*feature_statistics(b), *feature_statistics(a))
    assert moved == pytest.approx(base, rel=1e-9)
    assert swapped == pytest.approx(base, rel=1e-9)
    assert base > 1.0


def test_mean_shift_alone_adds_its_squared_norm() -> None:
    a, _ = gaussian_pair(50, 8, seed=5)
    mu, sigma = feature_statistics(a)
    assert frechet_distance(mu, sigma, mu + 0.5, sigma) == pytest.approx(8 * 0.25, rel=1e-8)


def test_torch_float32_inputs_give_the_numpy_float64_value() -> None:
    a, b = gaussian_pair(80, 10, seed=6)
    stats = (*feature_statistics(a), *feature_statistics(b))
    expected = frechet_distance(*stats)
    got = frechet_distance(*(torch.from_numpy(s).float() for s in stats))
    assert got == pytest.approx(expected, rel=1e-5)
    mu, sigma = feature_statistics(torch.from_numpy(a))
    np.testing.assert_allclose(sigma, np.cov(a, rowvar=False))
    np.testing.assert_allclose(mu, a.mean(axis=0))


def test_bad_inputs_are_user_errors() -> None:
    eye = np.eye(3)
    with pytest.raises(UserError, match="covariances must be"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), np.eye(4))
    with pytest.raises(UserError, match="negative eigenvalue"):
        frechet_distance(np.zeros(3), -eye, np.zeros(3), eye)
    with pytest.raises(UserError, match="sigma2 has a negative eigenvalue"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), -eye)
    with pytest.raises(UserError, match="not symmetric"):
        frechet_distance(np.zeros(3), np.triu(np.ones((3, 3))), np.zeros(3), eye)
    with pytest.raises(UserError, match="NaN"):
        frechet_distance(np.array([0.0, np.nan, 0.0]), eye, np.zeros(3), eye)
    with pytest.raises(UserError, match="at least 2"):
        feature_statistics(np.zeros((1, 5)))
