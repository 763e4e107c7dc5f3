"""The `lora` config section: rank, scaling and which groups of our model's Linear layers get adapters.

Groups name parts of the model, not peft's module-name suffixes: `q`/`k`/`v`/`o` alone would also hit the
bridge and the audio cross-attention, and MOVA's suffix list is only meaningful for its own module names.
Each group is a regular expression over `DualForceModel.named_modules()` paths (peft full-matches it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import Field, field_validator

from dualforce_core.config_model import ConfigModel
from dualforce_core.errors import UserError

_QKVO = r"\.(q|k|v|o)"
TARGET_GROUPS: dict[str, str] = {
    "self_attn": r"(video|struct)\.blocks\.\d+\.self_attn" + _QKVO,
    "audio_attn": r"(video|struct)\.blocks\.\d+\.audio_attn" + _QKVO,
    "bridge": r"bridge\.\d+\.(v_from_s|s_from_v)\.attn" + _QKVO,
    "text_attn": r"video\.blocks\.\d+\.text_attn" + _QKVO,
    "ffn": r"(video|struct)\.blocks\.\d+\.ffn\.(0|2)",
}
DEFAULT_TARGETS = ("self_attn", "bridge", "audio_attn")


def unknown_groups(groups: Sequence[str]) -> list[str]:
    return [g for g in groups if g not in TARGET_GROUPS]


def _group_error(groups: Sequence[str]) -> str:
    what = (
        f"unknown LoRA target group(s) {unknown_groups(groups)}" if groups else "no LoRA target group given"
    )
    return f"{what}; known groups: {', '.join(TARGET_GROUPS)}"


def target_pattern(groups: Sequence[str]) -> str:
    """One regular expression matching every Linear layer of the given groups."""
    if not groups or unknown_groups(groups):
        raise UserError(_group_error(groups))
    return "|".join(f"(?:{TARGET_GROUPS[g]})" for g in groups)


def group_of(module_name: str) -> str | None:
    """The target group a module path belongs to (None: not adaptable by any group)."""
    return next((g for g, pattern in TARGET_GROUPS.items() if re.fullmatch(pattern, module_name)), None)


class LoraConfig(ConfigModel):
    enabled: bool = Field(
        False,
        description="fine-tune LoRA adapters on a frozen base (`dualforce train --base-checkpoint DIR`)",
    )
    rank: int = Field(16, ge=1, description="adapter rank r (MOVA: 16)")
    alpha: float = Field(16.0, gt=0, description="the update is scaled by alpha / rank (MOVA: 16)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input")
    targets: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TARGETS),
        description=f"layer groups to adapt, from: {', '.join(TARGET_GROUPS)}",
    )

    @field_validator("targets")
    @classmethod
    def _known(cls, groups: list[str]) -> list[str]:
        if not groups or unknown_groups(groups):
            raise ValueError(_group_error(groups))
        return list(dict.fromkeys(groups))
