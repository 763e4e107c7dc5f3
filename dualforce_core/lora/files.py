"""The adapter directory, in PEFT's layout: `adapter_model.safetensors` + `adapter_config.json`.

Keys are stored as `PeftModel.save_pretrained` writes them (`base_model.model.<module>.lora_A.weight`), so
stock peft can read the directory too. `adapter_config.json` is peft's config plus a `dualforce` entry that
ties the adapter to its base: the preset name, the base's model config and its sha256. An adapter only
makes sense on the weights it was trained against; checking the config is what can be checked cheaply.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from peft import LoraConfig as PeftLoraConfig
from peft import PeftType
from peft.functional import get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import Linear as LoraLinear
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dualforce_core.errors import UserError
from dualforce_core.lora.adapter import (
    DEFAULT_ADAPTER,
    adapter_names,
    inject,
    peft_configs,
    set_active_adapter,
    set_lora_scale,
)
from dualforce_core.lora.config import group_of
from dualforce_core.models import DualForceModel, ModelConfig
from dualforce_core.models.model import WEIGHTS_FILE, checkpoint_config

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
LORA_SUBDIR = "lora"
KEY_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_[AB]\.weight$")


def config_hash(config: ModelConfig) -> str:
    """sha256 of the model config as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def load_base(base_checkpoint: str | Path, expected: ModelConfig | None = None) -> DualForceModel:
    """The base of a LoRA run (`--base-checkpoint DIR`), checked against the run's `model` config.

    UserError if that config describes another model (the adapters would be trained for weights that are
    not there).
    """
    config = checkpoint_config(base_checkpoint)
    if expected is not None and config_hash(expected) != config_hash(config):
        ours, theirs = expected.model_dump(mode="json"), config.model_dump(mode="json")
        differ = sorted(k for k in ours if ours[k] != theirs.get(k))
        raise UserError(
            f"base checkpoint {base_checkpoint} is not the model this config describes "
            f"(differing fields: {', '.join(differ)}); use the config the base was trained with"
        )
    weights = Path(base_checkpoint) / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{base_checkpoint} is not a saved DualForce model: {WEIGHTS_FILE} is missing")
    model = DualForceModel.from_config(config)
    model.load_state_dict(load_file(weights))
    return model


@dataclass(frozen=True)
class AdapterInfo:
    """What `dualforce lora info` shows: read from the two files without building a model."""

    path: Path
    rank: int
    alpha: float
    dropout: float
    target_modules: str
    groups: list[str]
    modules: int
    parameters: int
    size_bytes: int
    preset: str
    base_config_sha256: str
    base_config: dict[str, Any]
    base_checkpoint: str | None
    peft_version: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items() if k != "base_config"
        }


def _adapter_files(adapter_dir: str | Path) -> tuple[Path, Path]:
    root = Path(adapter_dir)
    if not root.is_dir():
        raise UserError(f"LoRA adapter directory {root} does not exist")
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (root / name).is_file():
            raise UserError(f"{root} is not a LoRA adapter directory: {name} is missing")
    return root / ADAPTER_CONFIG, root / ADAPTER_WEIGHTS


def _read_config(path: Path) -> tuple[PeftLoraConfig, dict[str, Any]]:
    """peft's config and our `dualforce` entry, or a UserError saying what is wrong with the file."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is corrupt (not JSON: {err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is corrupt: expected a JSON object")
    ours = data.pop("dualforce", None)
    if not isinstance(ours, dict) or not {"preset", "base_config_sha256", "base_config"} <= set(ours):
        raise UserError(
            f"{path} was not written by DualForce: it does not record its base model (preset, hash)"
        )
    if data.get("peft_type") != PeftType.LORA.value:
        raise UserError(f"{path} is a {data.get('peft_type')!r} adapter; only LoRA adapters are supported")
    try:
        config = PeftLoraConfig.from_peft_type(**data)
    except (TypeError, ValueError) as err:
        raise UserError(f"{path} is corrupt: {err}") from None
    return config, ours


def _shapes(weights: Path) -> dict[str, list[int]]:
    """Tensor shapes from the safetensors header; a truncated or garbled file is a UserError."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as err:  # safetensors raises its own error types for every kind of damage
        raise UserError(f"{weights} is corrupt or not a safetensors file: {err}") from None


def read_adapter_info(adapter_dir: str | Path) -> AdapterInfo:
    config_path, weights = _adapter_files(adapter_dir)
    config, ours = _read_config(config_path)
    shapes = _shapes(weights)
    modules = {m.group("module").removeprefix(KEY_PREFIX) for k in shapes if (m := _LORA_KEY.match(k))}
    groups = {group_of(m) for m in modules}
    return AdapterInfo(
        path=Path(adapter_dir),
        rank=int(config.r),
        alpha=float(config.lora_alpha),
        dropout=float(config.lora_dropout),
        target_modules=str(config.target_modules),
        groups=sorted(g for g in groups if g is not None),
        modules=len(modules),
        parameters=sum(int(torch.Size(s).numel()) for s in shapes.values()),
        size_bytes=weights.stat().st_size,
        preset=str(ours["preset"]),
        base_config_sha256=str(ours["base_config_sha256"]),
        base_config=dict(ours["base_config"]),
        base_checkpoint=ours.get("base_checkpoint"),
        peft_version=config.peft_version,
    )


def check_base(info: AdapterInfo, model_config: ModelConfig, what: str = "this model") -> None:
    """UserError unless the adapter was trained on a base with this model config."""
    if info.preset != model_config.preset:
        raise UserError(
            f"LoRA adapter {info.path} was trained on preset {info.preset!r}, but {what} is preset "
            f"{model_config.preset!r}: load it on the base checkpoint it was trained from"
        )
    if info.base_config_sha256 != config_hash(model_config):
        ours = model_config.model_dump(mode="json")
        differ = sorted(
            k for k in set(ours) | set(info.base_config) if ours.get(k) != info.base_config.get(k)
        )
        raise UserError(
            f"LoRA adapter {info.path} was trained on another base model (config sha256 "
            f"{info.base_config_sha256[:12]}…, {what} has {config_hash(model_config)[:12]}…; "
            f"differing fields: {', '.join(differ) or 'none visible'})"
        )


def _full(t: Tensor) -> Tensor:
    """A sharded (FSDP2 DTensor) parameter gathered whole; every rank must call this together."""
    full = getattr(t, "full_tensor", None)
    return (full() if full is not None else t).detach().cpu().contiguous()


def save_adapter(
    model: DualForceModel,
    out_dir: str | Path,
    name: str = DEFAULT_ADAPTER,
    base_checkpoint: str | Path | None = None,
) -> Path:
    """Adapter `name` as a PEFT directory (collective under FSDP; rank 0 writes)."""
    if name not in adapter_names(model):
        raise UserError(
            f"no adapter named {name!r} on the model to save; loaded: {adapter_names(model) or 'none'}"
        )
    state = {KEY_PREFIX + k: _full(v) for k, v in get_peft_model_state_dict(model, adapter_name=name).items()}
    out = Path(out_dir)
    if dist.is_initialized() and dist.get_rank() != 0:
        return out
    out.mkdir(parents=True, exist_ok=True)
    data = peft_configs(model)[name].to_dict()
    data = {k: sorted(v) if isinstance(v, set) else v for k, v in data.items()}
    data["base_model_name_or_path"] = str(base_checkpoint) if base_checkpoint else None
    data["inference_mode"] = True
    data["dualforce"] = {
        "preset": model.config.preset,
        "base_config_sha256": config_hash(model.config),
        "base_config": model.config.model_dump(mode="json"),
        "base_checkpoint": str(base_checkpoint) if base_checkpoint else None,
    }
    tmp = out / f".{ADAPTER_WEIGHTS}.tmp"
    save_file(state, tmp, metadata={"format": "pt"})
    os.replace(tmp, out / ADAPTER_WEIGHTS)
    (out / ADAPTER_CONFIG).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return out


def save_lora(
    model: DualForceModel, run_dir: str | Path, base_checkpoint_dir: str | Path, name: str = DEFAULT_ADAPTER
) -> Path:
    """The trainer's final export, `RUN_DIR/lora/`, after checking the model really is that base's."""
    base = checkpoint_config(base_checkpoint_dir)
    if config_hash(base) != config_hash(model.config):
        raise UserError(
            f"the model being saved does not have the config of base checkpoint {base_checkpoint_dir}"
        )
    return save_adapter(model, Path(run_dir) / LORA_SUBDIR, name, Path(base_checkpoint_dir).resolve())


def _check_weights(info: AdapterInfo, shapes: dict[str, list[int]], expected: dict[str, list[int]]) -> None:
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"{info.path / ADAPTER_WEIGHTS} does not fit its config on this model: "
            f"{len(missing)} tensors missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:2]})"
        )
    wrong = [k for k in expected if shapes[k] != expected[k]]
    if wrong:
        raise UserError(
            f"{info.path / ADAPTER_WEIGHTS} has wrong shapes, e.g. {wrong[0]}: "
            f"{shapes[wrong[0]]} instead of {expected[wrong[0]]}"
        )


def _expected_shapes(model: nn.Module, config: PeftLoraConfig) -> dict[str, list[int]]:
    """Keys and shapes the file must hold: lora_A [r, in] and lora_B [out, r] per targeted Linear."""
    rank, pattern = int(config.r), str(config.target_modules)
    shapes: dict[str, list[int]] = {}
    for path, module in model.named_modules():
        if isinstance(module, LoraLinear):
            base = module.get_base_layer()
        elif isinstance(module, nn.Linear) and ".lora_" not in path and not path.endswith(".base_layer"):
            base = module
        else:
            continue
        if isinstance(base, nn.Linear) and re.fullmatch(pattern, path):
            shapes[f"{KEY_PREFIX}{path}.lora_A.weight"] = [rank, base.in_features]
            shapes[f"{KEY_PREFIX}{path}.lora_B.weight"] = [base.out_features, rank]
    return shapes


def load_adapter(
    model: DualForceModel, adapter_dir: str | Path, name: str = DEFAULT_ADAPTER, scale: float = 1.0
) -> DualForceModel:
    """Add the adapter in `adapter_dir` as `name`, frozen, and make it the active one at `scale`.

    Every check (files, base preset and config, keys, shapes, finite values) runs before the model is
    touched, so a bad adapter leaves the model as it was. Call again with another `name` to hold several
    adapters on one base; `set_active_adapter` switches between them.
    """
    info = read_adapter_info(adapter_dir)
    check_base(info, model.config)
    config, _ = _read_config(Path(adapter_dir) / ADAPTER_CONFIG)
    weights = Path(adapter_dir) / ADAPTER_WEIGHTS
    _check_weights(info, _shapes(weights), _expected_shapes(model, config))
    try:
        state = load_file(weights)
    except Exception as err:  # a header that parses over data that does not
        raise UserError(f"{weights} is corrupt: {err}") from None
    if not all(t.is_floating_point() and bool(torch.isfinite(t).all()) for t in state.values()):
        raise UserError(f"{weights} holds non-float or non-finite values")
    # peft freezes the base when it injects; loading an adapter should change nothing else on the model.
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    inject(model, config, name)
    device = next(model.parameters()).device
    state = {k.removeprefix(KEY_PREFIX): v.to(device) for k, v in state.items()}
    set_peft_model_state_dict(model, state, adapter_name=name)
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    set_active_adapter(model, name)
    set_lora_scale(model, scale, name)
    return model
