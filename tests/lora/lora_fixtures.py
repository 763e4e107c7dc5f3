"""A tiny 'trained' base, a fixed flow-matching batch, and the record of an adapter trained on it.

The base is a tiny preset model with every weight perturbed: a fresh model has zero gates and zero output
projections (AdaLN-Zero), under which most adapters would get no gradient; a trained base has neither.
The adapter is trained with the flow-matching objective on one fixed batch (one identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dualforce_core.lora.config import LoraConfig
from dualforce_core.losses import flow_matching_loss
from dualforce_core.models import DualForceModel
from dualforce_core.schedulers.flow_match import STRUCT_FRAME_DIM, VIDEO_FRAME_DIM, add_noise, velocity_target

LORA = LoraConfig(rank=4, alpha=4.0)
STEPS = 12


def trained_like_base(seed: int = 0, preset: str = "tiny", video_layers: int | None = None) -> DualForceModel:
    torch.manual_seed(seed)
    if video_layers is None:
        model = DualForceModel.from_preset(preset)
    else:
        model = DualForceModel.from_preset(preset, video_layers=video_layers)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def fixed_batch(model: DualForceModel) -> dict[str, Tensor]:
    """Noisy inputs at fixed σ and noise, plus their flow-matching targets."""
    clean = model.dummy_inputs(batch_size=2, latent_frames=3, seed=1, height=4, width=4)
    g = torch.Generator().manual_seed(2)
    noise_v = torch.randn(clean["video"].shape, generator=g)
    noise_s = torch.randn(clean["struct"].shape, generator=g)
    sv, ss = clean["sigma_video"], clean["sigma_struct"]
    return {
        "video": add_noise(clean["video"], noise_v, sv, VIDEO_FRAME_DIM),
        "struct": add_noise(clean["struct"], noise_s, ss, STRUCT_FRAME_DIM),
        "sigma_video": sv,
        "sigma_struct": ss,
        "audio": clean["audio"],
        "target_video": velocity_target(clean["video"], noise_v),
        "target_struct": velocity_target(clean["struct"], noise_s),
    }


def model_inputs(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if not k.startswith("target_")}


def loss_of(model: DualForceModel, batch: dict[str, Tensor]) -> Tensor:
    out = model(**model_inputs(batch))
    return flow_matching_loss(out.video, batch["target_video"], VIDEO_FRAME_DIM) + flow_matching_loss(
        out.struct, batch["target_struct"], STRUCT_FRAME_DIM
    )


@dataclass
class TrainedAdapter:
    base_dir: Path
    adapter_dir: Path
    batch: dict[str, Tensor]
    base_state: dict[str, Tensor]  # before training
    adapter_init: dict[str, Tensor]  # adapter tensors before training
    base_state_after: dict[str, Tensor]
    adapter_after: dict[str, Tensor]
    trainable: int
    losses: list[float]
    base_video: Tensor  # base model outputs on the batch
    trained_video: Tensor  # adapted model outputs on the batch
    trained_struct: Tensor
