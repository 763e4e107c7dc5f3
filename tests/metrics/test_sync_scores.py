from __future__ import annotations

import numpy as np
import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.metrics import sync_scores


def test_known_minimum_gives_its_offset_and_the_exact_formula_values() -> None:
    # K = 2: mean distances per offset -2..+2 are 5, 4, 1, 3, 6 (each row averages two windows).
    dists = np.array([[4.0, 6.0], [3.0, 5.0], [0.5, 1.5], [2.0, 4.0], [6.0, 6.0]])
    offset, sync_c, sync_d = sync_scores(dists)
    assert offset == 0
    assert sync_d == pytest.approx(1.0)
    assert sync_c == pytest.approx(4.0 - 1.0)  # median(5, 4, 1, 3, 6) − min


def test_offset_is_argmin_minus_k_on_a_31_row_matrix() -> None:
    rng = np.random.default_rng(0)
    dists = rng.uniform(8, 12, size=(31, 40))
    dists[20] -= 3.0  # offset +5 is clearly best
    scores = sync_scores(dists)
    mean = dists.mean(axis=1)
    assert scores.offset == 5
    assert scores.sync_d == pytest.approx(mean[20])
    assert scores.sync_c == pytest.approx(np.median(mean) - mean[20])


def test_matches_syncnet_python_evaluate_on_its_own_layout() -> None:
    """syncnet_python keeps per-window rows over shifts j (audio i + j − K) and reports K − argmin."""
    k, windows = 15, 25
    reference_dists = torch.rand(windows, 2 * k + 1, generator=torch.Generator().manual_seed(3)) + 5
    reference_dists[:, 9] -= 2.0
    mdist = reference_dists.mean(dim=0)
    minval, minidx = torch.min(mdist, 0)
    reference_offset = k - int(minidx)
    reference_conf = float(torch.median(mdist) - minval)

    ours = sync_scores(reference_dists.numpy().T[::-1])
    assert ours.offset == reference_offset == 6
    # The reference is fp32 (means of 25 values in [3, 6], ulp ≤ 4.8e-7), ours float64; Sync-C ≈ 2 is a
    # difference of two such means: 1e-5 relative (measured 3.3e-7).
    assert ours.sync_c == pytest.approx(reference_conf, rel=1e-5)
    assert ours.sync_d == pytest.approx(float(minval), rel=1e-5)


def test_bad_shapes_and_values_are_user_errors() -> None:
    with pytest.raises(UserError, match="2K\\+1"):
        sync_scores(np.ones((4, 3)))
    with pytest.raises(UserError, match="2K\\+1"):
        sync_scores(np.ones((5, 0)))
    with pytest.raises(UserError, match="NaN"):
        sync_scores(np.full((3, 2), np.nan))
