"""Training noise levels for diffusion forcing: an independent continuous σ per latent frame and modality.

Independent σ per frame is what lets one network both denoise a chunk and condition on earlier chunks at
any noise level (clean cache, pipelined chunks in flight); independent σ per modality lets each tower learn
to use the other at every pairing of noise levels. A fraction of samples share one σ across frames (per
modality) so the plain full-sequence case is seen often, not only as a measure-zero event.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dualforce_core.errors import UserError
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.schedulers.flow_match import shift_sigma


class TrainingSigmas(NamedTuple):
    video: Tensor
    struct: Tensor


class SigmaSampler:
    """Draws [B, F] σ per modality; frame 0 (the reference) is always 0. Deterministic given the generator.

    Per sample and modality: with probability `shared_sigma_prob` every generated frame takes one common
    draw, otherwise each frame draws its own. Draws are uniform or sigmoid(N(logit_mean, logit_std)) and
    then shifted with that modality's shift. The shared/independent choice is made separately for each
    modality, so the two modalities stay independent.
    """

    def __init__(self, config: DiffusionConfig) -> None:
        self.config = config

    def base(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        """Unshifted draws in (0, 1) from the configured distribution, on the generator's device."""
        cfg = self.config
        if cfg.sigma_sampler == "uniform":
            return torch.rand(shape, generator=generator, device=generator.device)
        normal = torch.randn(shape, generator=generator, device=generator.device)
        return torch.sigmoid(cfg.logit_mean + cfg.logit_std * normal)

    def sample(
        self, batch: int, frames: int, generator: torch.Generator, device: torch.device | str | None = None
    ) -> TrainingSigmas:
        if batch < 1 or frames < 1:
            raise UserError(
                f"need at least one sample and one latent frame, got batch={batch}, frames={frames}"
            )
        cfg = self.config
        draws = self.base((2, batch, frames), generator)
        shared = (
            torch.rand((2, batch, 1), generator=generator, device=generator.device) < cfg.shared_sigma_prob
        )
        common = draws[:, :, 1:2] if frames > 1 else draws[:, :, :1]
        draws = torch.where(shared, common, draws)
        video = shift_sigma(draws[0], cfg.shift_video)
        struct = shift_sigma(draws[1], cfg.shift_struct)
        video[:, 0] = 0.0
        struct[:, 0] = 0.0
        return TrainingSigmas(video.to(device), struct.to(device))
