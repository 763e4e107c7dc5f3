"""Inject, freeze, switch and scale peft LoRA adapters on a `DualForceModel`, in place.

`peft.functional.inject_adapter_in_model` rather than `get_peft_model`: the model stays a
`DualForceModel` (same forward signature, `config`, `save_pretrained`, streaming cache keys), and several
named adapters can live on one base and be switched without reloading it.
"""

from __future__ import annotations

import warnings

import torch
from peft import LoraConfig as PeftLoraConfig
from peft.functional import inject_adapter_in_model, set_adapter, set_requires_grad
from peft.tuners.lora import Linear as LoraLinear
from torch import nn

from dualforce_core.errors import UserError
from dualforce_core.lora.config import LoraConfig, target_pattern
from dualforce_core.models import DualForceModel

DEFAULT_ADAPTER = "default"


def peft_config(config: LoraConfig) -> PeftLoraConfig:
    """Our section as peft's LoRA config: `lora_B` starts at zero, so a fresh adapter is the identity."""
    return PeftLoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,  # type: ignore[arg-type]  # peft annotates int; MOVA's 16.0 is a float
        lora_dropout=config.dropout,
        target_modules=target_pattern(config.targets),
        bias="none",
    )


def peft_configs(model: nn.Module) -> dict[str, PeftLoraConfig]:
    """peft's config of each adapter loaded on the model (peft keeps them on the model), in load order."""
    configs: dict[str, PeftLoraConfig] = getattr(model, "peft_config", {})
    return configs


def adapter_names(model: nn.Module) -> list[str]:
    return list(peft_configs(model))


def lora_layers(model: nn.Module) -> list[tuple[str, LoraLinear]]:
    """Adapted Linear layers by their original path (the path of the Linear they wrap)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLinear)]


def inject(model: DualForceModel, config: PeftLoraConfig, name: str) -> DualForceModel:
    """Add adapter `name` (a second adapter on one base is intended, so peft's warning is silenced)."""
    if name in adapter_names(model):
        raise UserError(f"an adapter named {name!r} is already loaded on this model")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        try:
            inject_adapter_in_model(config, model, adapter_name=name)
        except ValueError as err:
            raise UserError(
                f"LoRA targets match no layer of this model ({config.target_modules}): {err}"
            ) from None
    return model


def apply_lora(model: DualForceModel, config: LoraConfig, name: str = DEFAULT_ADAPTER) -> DualForceModel:
    """Fresh adapter `name` on every Linear of the configured groups; base frozen, only it trainable."""
    inject(model, peft_config(config), name)
    set_active_adapter(model, name)
    model.requires_grad_(False)
    set_requires_grad(model, name, requires_grad=True)
    return model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def prepare_lora_training(
    model: DualForceModel, config: LoraConfig
) -> tuple[DualForceModel, list[nn.Parameter]]:
    """The trainer's entry: LoRA applied, and the parameters (adapter only) to hand the optimiser.

    FSDP2's `fully_shard` replaces every parameter object: under it, build the optimiser after
    sharding from `trainable_parameters(model)` (requires_grad survives sharding), not from this list.
    """
    apply_lora(model, config)
    return model, trainable_parameters(model)


def adapter_parameters(model: nn.Module, name: str = DEFAULT_ADAPTER) -> dict[str, nn.Parameter]:
    """Adapter `name`'s tensors by their path in the model (`...q.lora_A.<name>.weight`)."""
    marker = f".{name}."
    return {n: p for n, p in model.named_parameters() if (".lora_A." in n or ".lora_B." in n) and marker in n}


def trainable_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in trainable_parameters(model))


def adapter_num_bytes(model: nn.Module, name: str = DEFAULT_ADAPTER) -> int:
    """Bytes of adapter `name`'s tensors as stored (the size of its safetensors file, less the header)."""
    return sum(p.numel() * p.element_size() for p in adapter_parameters(model, name).values())


def set_active_adapter(model: nn.Module, name: str) -> None:
    """Route the forward through adapter `name` only; the others stay loaded, unused and frozen."""
    if name not in adapter_names(model):
        raise UserError(f"no adapter named {name!r} is loaded; loaded: {adapter_names(model) or 'none'}")
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    set_adapter(model, name)
    # peft's switch makes the active adapter trainable; training state is apply_lora's business.
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)


def set_lora_scale(model: nn.Module, scale: float, name: str | None = None) -> None:
    """Scale adapter `name` (default: every adapter) to `scale`·alpha/r; 0 gives the base model exactly."""
    names = [name] if name is not None else adapter_names(model)
    if name is not None and name not in adapter_names(model):
        raise UserError(f"no adapter named {name!r} is loaded; loaded: {adapter_names(model) or 'none'}")
    for _, layer in lora_layers(model):
        for n in names:
            layer.set_scale(n, scale)


def active_adapter(model: nn.Module) -> str | None:
    layers = lora_layers(model)
    return layers[0][1].active_adapters[0] if layers else None


@torch.no_grad()
def delta_weights(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """`scale·(alpha/r)·B·A` of adapter `name` for each adapted Linear, keyed by the Linear's path."""
    return {path: layer.get_delta_weight(name) for path, layer in lora_layers(model) if name in layer.scaling}
