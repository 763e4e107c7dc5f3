"""Training losses: per-modality flow matching, lip-sync InfoNCE, FLAME alignment, and their weighted sum."""

from dualforce_core.losses.dualforce_loss import DualForceLoss, LossInputs, LossOutput
from dualforce_core.losses.flame import FlameHead, flame_alignment_loss
from dualforce_core.losses.flow_matching import flow_matching_loss
from dualforce_core.losses.lipsync import LipSyncContrastiveLoss, LipSyncOutput

__all__ = [
    "DualForceLoss",
    "FlameHead",
    "LipSyncContrastiveLoss",
    "LipSyncOutput",
    "LossInputs",
    "LossOutput",
    "flame_alignment_loss",
    "flow_matching_loss",
]
