"""Fréchet distance between two Gaussians fitted to network features: the maths behind FID and FVD.

    FD = ‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2·Tr((Σ1Σ2)^½)

The reference implementations (pytorch-fid, StyleGAN, StyleGAN-V) take `scipy.linalg.sqrtm(Σ1Σ2)`:
a Schur decomposition of a non-symmetric product that goes complex or infinite when the covariances
are near-singular (fewer samples than feature dimensions, which is the usual case for a 2048-d
feature on a small test split), hence their `eps·I` retry and "discard small imaginary parts" rule.

Only the trace of the square root is needed, and the eigenvalues of Σ1Σ2 are those of the symmetric
positive semi-definite matrix √Σ1·Σ2·√Σ1 (same spectrum, similar matrices). So we take two symmetric
eigen-decompositions (`eigh`, backward stable, always real), clip the round-off negatives to zero
and sum the square roots. No regularisation is added, so the value is the exact Fréchet distance of
the given covariances (the scipy route with `eps` is only an approximation of it), and it is several
times faster than `sqrtm` at 2048-d. Agreement with the scipy route is tested, near-singular
covariances included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dualforce_core.errors import UserError

# Relative size of a negative eigenvalue (or of an asymmetry) that is round-off, not a bad input.
_PSD_TOLERANCE = 1e-6


def _to_float64(value: Any, name: str) -> np.ndarray:
    """numpy or torch in, float64 numpy out (torch tensors may live on any device)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise UserError(f"{name} contains NaN or Inf; the features it came from are broken")
    return array


def feature_statistics(features: Any, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] of features [N, D], the Gaussian the distance compares.

    `ddof` picks the protocol the number must match: 1 divides by N − 1 (`np.cov`), as clean-fid and
    pytorch-fid do for FID; 0 divides by N, as StyleGAN-V's `FeatureStats.get_mean_cov` does for FVD
    (raw second moment / N − mean·meanᵀ). The trace terms of the distance scale by (N − 1)/N between the
    two, which at the few dozen clips of a test split is several percent, so each metric uses its own.
    """
    if ddof not in (0, 1):
        raise UserError(f"ddof must be 0 (divide by N) or 1 (divide by N - 1), got {ddof}")
    array = _to_float64(features, "features")
    if array.ndim != 2:
        raise UserError(f"features must be [N, D], got shape {array.shape}")
    if array.shape[0] < 2:
        raise UserError(f"a covariance needs at least 2 feature vectors, got {array.shape[0]}")
    return array.mean(axis=0), np.atleast_2d(np.cov(array, rowvar=False, ddof=ddof))


def _symmetric(matrix: np.ndarray, name: str) -> np.ndarray:
    scale = max(float(np.abs(matrix).max()), np.finfo(np.float64).tiny)
    if np.abs(matrix - matrix.T).max() > _PSD_TOLERANCE * scale:
        raise UserError(f"{name} is not symmetric, so it is not a covariance matrix")
    return (matrix + matrix.T) / 2


def _clipped(eigenvalues: np.ndarray, name: str) -> np.ndarray:
    """Round-off negatives to 0; a clearly negative eigenvalue means the input is not a covariance."""
    if eigenvalues.min() < -_PSD_TOLERANCE * max(float(np.abs(eigenvalues).max()), np.finfo(np.float64).tiny):
        raise UserError(
            f"{name} has a negative eigenvalue {eigenvalues.min():.3g}; it is not a covariance matrix"
        )
    return np.clip(eigenvalues, 0.0, None)


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); numpy or torch inputs, float64 maths."""
    m1, m2 = _to_float64(mu1, "mu1"), _to_float64(mu2, "mu2")
    s1, s2 = _to_float64(sigma1, "sigma1"), _to_float64(sigma2, "sigma2")
    if m1.ndim != 1 or m1.shape != m2.shape:
        raise UserError(f"means must be two vectors of one length, got shapes {m1.shape} and {m2.shape}")
    dim = m1.shape[0]
    if s1.shape != (dim, dim) or s2.shape != (dim, dim):
        raise UserError(f"covariances must be [{dim}, {dim}], got shapes {s1.shape} and {s2.shape}")
    s1, s2 = _symmetric(s1, "sigma1"), _symmetric(s2, "sigma2")
    values1, vectors1 = np.linalg.eigh(s1)
    root1 = (vectors1 * np.sqrt(_clipped(values1, "sigma1"))) @ vectors1.T
    # sigma2 is checked through the product: its negative directions show wherever sigma1 is non-degenerate.
    product = root1 @ s2 @ root1
    inner = _clipped(np.linalg.eigvalsh((product + product.T) / 2), "sigma2")
    trace_sqrt = float(np.sqrt(inner).sum())
    diff = m1 - m2
    distance = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)
    # The true value is ≥ 0; identical inputs land a few ulps either side of it.
    return max(distance, 0.0)
