"""The Wan VAE's tensor layout: latent width, and uint8 frames → its input tensor (strides: `timeline`).

Kept apart from the latents stage so code that only feeds the VAE (fitting it, say) needs neither the
Lance tables nor the video decoder.
"""

from __future__ import annotations

import numpy as np
import torch

from dualforce_core.errors import UserError
from dualforce_core.timeline import SPATIAL_STRIDE, TEMPORAL_STRIDE

Z_DIM = 16


def frames_to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] → float [B, 3, T, H, W] in [-1, 1], checking the VAE's shape rules."""
    _, t, h, w, _ = frames.shape
    if t % TEMPORAL_STRIDE != 1:
        raise UserError(
            f"clips need 1 (mod {TEMPORAL_STRIDE}) frames for the Wan VAE; got {t} (it would drop the rest)"
        )
    if h % SPATIAL_STRIDE or w % SPATIAL_STRIDE:
        raise UserError(f"frame size {h}×{w} is not a multiple of {SPATIAL_STRIDE}")
    return torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)
