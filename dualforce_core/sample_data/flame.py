"""A FLAME-shaped target for synthetic clips: 50 expression coefficients + 3 jaw pose angles.

The pipeline's FLAME alignment loss needs per-frame FLAME parameters; on synthetic faces there is no
mesh to fit, so this derives a vector of the same layout from the ground truth. It is a fixed smooth
function (the same for every dataset and seed), so a model can learn it exactly and the loss is
meaningful: jaw pitch is the mouth opening, and the expression coefficients mix lip opening, eyelid
closure and small pose couplings through a fixed basis whose weights decay with the index, like a PCA
basis would.
"""

from __future__ import annotations

import numpy as np

from dualforce_core.flame_layout import FLAME_EXPRESSION_DIM

JAW_MAX_RAD = 0.35
"""Jaw pitch of a fully open mouth, about 20° (FLAME's jaw joint is axis-angle in radians)."""

_BASIS_SEED = 53


def _basis() -> np.ndarray:
    """[50, 6] fixed mixing from (mouth, mouth², blink, yaw, pitch, roll) to expression coefficients."""
    basis = np.random.default_rng(_BASIS_SEED).standard_normal((FLAME_EXPRESSION_DIM, 6))
    basis *= (1.0 / (1.0 + np.arange(FLAME_EXPRESSION_DIM)))[:, None]
    basis[0] = [2.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # component 0: lip opening
    basis[1] = [0.0, 0.0, 1.5, 0.0, 0.0, 0.0]  # component 1: eyelid closure
    basis[:, 3:] *= 0.1  # pose leaks only weakly into expression
    return basis


def flame_params(
    mouth_open: np.ndarray, blink: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray
) -> np.ndarray:
    """[T, 53] float32: expression (50) then jaw axis-angle (3); pose arguments in degrees."""
    pose = np.radians(np.stack([yaw, pitch, roll], axis=1))
    features = np.concatenate(
        [mouth_open[:, None], mouth_open[:, None] ** 2, blink[:, None], pose], axis=1
    )  # [T, 6]
    expression = features @ _basis().T
    jaw = np.stack(
        [JAW_MAX_RAD * mouth_open, 0.05 * mouth_open * pose[:, 0], np.zeros_like(mouth_open)], axis=1
    )
    return np.concatenate([expression, jaw], axis=1).astype(np.float32)
