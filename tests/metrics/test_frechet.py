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


# Four 2-d feature vectors per side, hand-computed. Real: (0,0), (2,0), (0,2), (2,2): mean (1, 1), centred
# (±1, ±1), so Σx² = Σy² = 4 and Σxy = 0. Generated: 3·real + (1, 0): mean (4, 3), Σx² = Σy² = 36, Σxy = 0.
HAND_REAL = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
HAND_FAKE = 3.0 * HAND_REAL + np.array([1.0, 0.0])
# ‖μ1 − μ2‖² = 3² + 2² = 13. Diagonal covariances, so Tr((Σ1Σ2)^½) = Σ √(σ1ᵢ σ2ᵢ).
# N − 1 (clean-fid's np.cov): σ1 = 4/3, σ2 = 12: FD = 13 + 2·4/3 + 2·12 − 2·2·√16 = 71/3.
# N (StyleGAN-V's FeatureStats): σ1 = 1, σ2 = 9: FD = 13 + 2 + 18 − 2·2·√9 = 21.
FID_HAND = 71 / 3
FVD_HAND = 21.0


def clean_fid_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """clean-fid `cleanfid/fid.py` frechet_distance: sqrtm of the product, eps·I retry, real part.

    (clean-fid calls sqrtm with disp=False, which this SciPy deprecates; the square root is the same.)
    """
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def stylegan_v_mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StyleGAN-V `metric_utils.FeatureStats`: float32 features, float64 raw moments, / N, minus mean·meanᵀ."""
    x64 = np.asarray(features, dtype=np.float32).astype(np.float64)
    mean = x64.sum(axis=0) / len(x64)
    return mean, x64.T @ x64 / len(x64) - np.outer(mean, mean)


def test_fid_matches_clean_fid_statistics_and_distance_on_a_hand_computed_case() -> None:
    """What FID matches: clean-fid `fid_from_feats` — np.mean, np.cov (N − 1), then its frechet_distance."""
    ours = frechet_distance(*feature_statistics(HAND_REAL), *feature_statistics(HAND_FAKE))
    assert ours == pytest.approx(FID_HAND, rel=1e-12)
    clean_fid = clean_fid_frechet(
        np.mean(HAND_REAL, axis=0),
        np.cov(HAND_REAL, rowvar=False),
        np.mean(HAND_FAKE, axis=0),
        np.cov(HAND_FAKE, rowvar=False),
    )
    assert clean_fid == pytest.approx(FID_HAND, rel=1e-12)


def test_fvd_matches_stylegan_v_covariance_over_n_on_a_hand_computed_case() -> None:
    """What FVD matches: StyleGAN-V `FeatureStats.get_mean_cov` (÷ N), then its sqrtm distance."""
    mu1, s1 = feature_statistics(HAND_REAL, ddof=0)
    mu2, s2 = feature_statistics(HAND_FAKE, ddof=0)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(FVD_HAND, rel=1e-12)
    for features, (mu, sigma) in ((HAND_REAL, (mu1, s1)), (HAND_FAKE, (mu2, s2))):
        their_mu, their_sigma = stylegan_v_mean_cov(features)
        np.testing.assert_allclose(mu, their_mu, rtol=1e-12)
        np.testing.assert_allclose(sigma, their_sigma, rtol=1e-12, atol=1e-12 * np.abs(their_sigma).max())


def test_covariance_over_n_shrinks_only_the_trace_terms_by_n_minus_1_over_n() -> None:
    """N = 18 clips of 8-d features: FD(÷N) − ‖Δμ‖² = (N−1)/N · (FD(÷(N−1)) − ‖Δμ‖²), i.e. −5.6 % of that part."""
    a, b = gaussian_pair(18, 8, seed=7)  # full rank: no clipped round-off eigenvalues in the square roots
    mean_term = float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2))
    unbiased = frechet_distance(*feature_statistics(a, ddof=1), *feature_statistics(b, ddof=1))
    over_n = frechet_distance(*feature_statistics(a, ddof=0), *feature_statistics(b, ddof=0))
    assert over_n - mean_term == pytest.approx((unbiased - mean_term) * 17 / 18, rel=1e-9)
    assert over_n < unbiased
    with pytest.raises(UserError, match="ddof"):
        feature_statistics(a, ddof=2)
