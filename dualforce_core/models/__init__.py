"""The DualForce model: towers, bridge, audio conditioning, structure-token layout, Wan weight adapter."""

from dualforce_core.models.attention import AttentionCache, KVCache
from dualforce_core.models.config import ModelConfig
from dualforce_core.models.model import DualForceModel, DualForceOutput
from dualforce_core.models.struct_tokens import LIP_KEYPOINTS, StructTokenProjector
from dualforce_core.models.wan_adapter import LoadReport, load_wan_weights

__all__ = [
    "LIP_KEYPOINTS",
    "AttentionCache",
    "DualForceModel",
    "DualForceOutput",
    "KVCache",
    "LoadReport",
    "ModelConfig",
    "StructTokenProjector",
    "load_wan_weights",
]
