"""Exponential moving average of the weights, kept in fp32 and sharded exactly like the parameters.

Under FSDP2 every parameter is a DTensor shard; cloning it gives a shadow with the same placement, so the
EMA costs one extra fp32 copy of each rank's shard, never a full copy, and saves through DCP like the model.
It tracks the parameters it is given, the trainable ones: a LoRA run keeps no copy of its frozen base.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

# Wrappers that activation checkpointing and torch.compile may insert into parameter names.
_WRAPPER_PARTS = ("_checkpoint_wrapped_module.", "_orig_mod.", "_fsdp_wrapped_module.")


def clean_name(name: str) -> str:
    """The parameter's name in the unwrapped model, so EMA weights load into a fresh model."""
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


class EMA:
    """`shadow ← decay·shadow + (1-decay)·param`, with the decay warmed up as (1+n)/(10+n) over updates."""

    def __init__(self, named_params: Iterable[tuple[str, nn.Parameter]], decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.names: list[str] = []
        self.shadow: list[Tensor] = []
        for name, param in named_params:
            self.names.append(clean_name(name))
            self.shadow.append(param.detach().clone().float())

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, params: Iterable[nn.Parameter]) -> None:
        values = [p.detach().float() for p in params]
        if len(values) != len(self.shadow):
            raise ValueError(f"EMA tracks {len(self.shadow)} parameters, got {len(values)}")
        torch._foreach_lerp_(self.shadow, values, 1.0 - self.current_decay())
        self.updates += 1

    def state_dict(self) -> dict[str, object]:
        state: dict[str, object] = {f"shadow.{name}": t for name, t in zip(self.names, self.shadow)}
        state["updates"] = self.updates
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        with torch.no_grad():
            for name, tensor in zip(self.names, self.shadow):
                value = state[f"shadow.{name}"]
                if value is not tensor:
                    tensor.copy_(value)  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[call-overload]

    def full_state_dict(self) -> dict[str, Tensor]:
        """Unsharded fp32 EMA weights by clean parameter name (a collective under FSDP: call on every rank)."""
        out = {}
        for name, tensor in zip(self.names, self.shadow):
            full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
            out[name] = full.detach().cpu()
        return out
