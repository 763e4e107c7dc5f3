"""Initialise the video tower from a Wan 2.1 DiT: diffusers `WanTransformer3DModel` or original layout.

Kept apart from the model (torchtitan style). Tensors are copied wherever a key has a counterpart of
the same shape; everything else is reported. The video tower's struct-σ projection (`proj_s`) is
then zeroed, so the loaded tower with audio/bridge at their zero init computes exactly what Wan does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from dualforce_core.errors import UserError
from dualforce_core.models.model import DualForceModel

_BLOCK = r"blocks\.(\d+)\."
_V = "video."
# (source pattern, target template): diffusers names first, then original Wan 2.1 names.
RULES: tuple[tuple[str, str], ...] = (
    (r"patch_embedding\.(weight|bias)", r"patch_embedding.\1"),
    (r"condition_embedder\.time_embedder\.linear_([12])\.(weight|bias)", _V + r"time_v.linear_\1.\2"),
    (r"condition_embedder\.time_proj\.(weight|bias)", _V + r"proj_v.\1"),
    (r"condition_embedder\.text_embedder\.linear_([12])\.(weight|bias)", _V + r"text_in.linear_\1.\2"),
    (_BLOCK + r"scale_shift_table", _V + r"blocks.\1.table"),
    (_BLOCK + r"attn1\.to_([qkv])\.(weight|bias)", _V + r"blocks.\1.self_attn.\2.\3"),
    (_BLOCK + r"attn1\.to_out\.0\.(weight|bias)", _V + r"blocks.\1.self_attn.o.\2"),
    (_BLOCK + r"attn1\.norm_([qk])\.weight", _V + r"blocks.\1.self_attn.norm_\2.weight"),
    (_BLOCK + r"attn2\.to_([qkv])\.(weight|bias)", _V + r"blocks.\1.text_attn.\2.\3"),
    (_BLOCK + r"attn2\.to_out\.0\.(weight|bias)", _V + r"blocks.\1.text_attn.o.\2"),
    (_BLOCK + r"attn2\.norm_([qk])\.weight", _V + r"blocks.\1.text_attn.norm_\2.weight"),
    (_BLOCK + r"norm2\.(weight|bias)", _V + r"blocks.\1.text_norm.\2"),
    (_BLOCK + r"ffn\.net\.0\.proj\.(weight|bias)", _V + r"blocks.\1.ffn.0.\2"),
    (_BLOCK + r"ffn\.net\.2\.(weight|bias)", _V + r"blocks.\1.ffn.2.\2"),
    (r"scale_shift_table", _V + "head_table"),
    (r"proj_out\.(weight|bias)", _V + r"proj_out.\1"),
    # Original Wan 2.1 (wan/modules/model.py).
    (r"time_embedding\.0\.(weight|bias)", _V + r"time_v.linear_1.\1"),
    (r"time_embedding\.2\.(weight|bias)", _V + r"time_v.linear_2.\1"),
    (r"time_projection\.1\.(weight|bias)", _V + r"proj_v.\1"),
    (r"text_embedding\.0\.(weight|bias)", _V + r"text_in.linear_1.\1"),
    (r"text_embedding\.2\.(weight|bias)", _V + r"text_in.linear_2.\1"),
    (_BLOCK + r"modulation", _V + r"blocks.\1.table"),
    (_BLOCK + r"self_attn\.([qkvo]|norm_q|norm_k)\.(weight|bias)", _V + r"blocks.\1.self_attn.\2.\3"),
    (_BLOCK + r"cross_attn\.([qkvo]|norm_q|norm_k)\.(weight|bias)", _V + r"blocks.\1.text_attn.\2.\3"),
    (_BLOCK + r"norm3\.(weight|bias)", _V + r"blocks.\1.text_norm.\2"),
    (_BLOCK + r"ffn\.([02])\.(weight|bias)", _V + r"blocks.\1.ffn.\2.\3"),
    (r"head\.modulation", _V + "head_table"),
    (r"head\.head\.(weight|bias)", _V + r"proj_out.\1"),
)
_PREFIXES = ("module.", "model.", "transformer.")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # our keys copied from Wan
    new: list[str] = field(default_factory=list)  # our keys left at their own init (or zeroed)
    skipped: list[str] = field(default_factory=list)  # Wan keys not used, with the reason

    def summary(self) -> str:
        return f"loaded {len(self.loaded)} tensors from Wan, {len(self.new)} new, {len(self.skipped)} skipped"


def _target_key(key: str) -> str | None:
    for prefix in _PREFIXES:
        key = key.removeprefix(prefix)
    for pattern, template in RULES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, template, key)
    return None


def read_state_dict(source: str | Path) -> dict[str, Tensor]:
    """A safetensors file, a directory of (sharded) safetensors, or a torch checkpoint (weights only)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise UserError(f"no .safetensors files in {path}")
        return {k: v for f in files for k, v in load_file(f).items()}
    if not path.is_file():
        raise UserError(f"Wan weights not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise UserError(f"{path} does not hold a state dict")
    return dict(state)


def load_wan_weights(
    model: DualForceModel, state_dict_or_path: Mapping[str, Tensor] | str | Path
) -> LoadReport:
    source = (
        state_dict_or_path if isinstance(state_dict_or_path, Mapping) else read_state_dict(state_dict_or_path)
    )
    ours = model.state_dict()
    report = LoadReport()
    updates: dict[str, Tensor] = {}
    for key, value in source.items():
        target = _target_key(key)
        if target is None or target not in ours:
            report.skipped.append(f"{key} (no counterpart)")
            continue
        want = ours[target].shape
        if value.ndim == len(want) + 1 and value.shape[0] == 1:
            value = value[0]  # Wan's [1, 6, dim] / [1, 2, dim] modulation tables
        if (
            target == "patch_embedding.weight"
            and model.config.reference_concat
            and value.shape[1] * 2 == want[1]
        ):
            # I2V-style input: Wan's kernels read the latents, the reference channels start at zero, so
            # the loaded model computes what Wan does until training teaches it to read the reference.
            value = torch.cat([value, torch.zeros_like(value)], dim=1)
        if value.shape != want:
            report.skipped.append(f"{key} (shape {list(value.shape)} vs {target} {list(want)})")
            continue
        updates[target] = value
    with torch.no_grad():
        for key, value in updates.items():
            ours[key].copy_(value.to(ours[key].dtype))
        model.video.proj_s.weight.zero_()
        model.video.proj_s.bias.zero_()
    report.loaded = sorted(updates)
    report.new = sorted(set(ours) - set(updates))
    return report
