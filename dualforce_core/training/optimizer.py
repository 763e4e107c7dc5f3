"""The optimiser named by `train.optimizer`, over exactly the parameters that train.

`adamw8bit` (bitsandbytes) stores both Adam moments in 8 bits, a quarter of AdamW's optimiser memory;
its kernels are CUDA-only, so it is refused up front elsewhere rather than failing at the first step.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.optim import Optimizer

from dualforce_core.errors import UserError
from dualforce_core.training.config import TrainConfig


def build_optimizer(params: Sequence[nn.Parameter], cfg: TrainConfig, device: torch.device) -> Optimizer:
    """AdamW or bitsandbytes' AdamW8bit with the configured lr, betas and weight decay."""
    if not params:
        raise UserError("no parameter trains in this run (is every layer frozen?)")
    if cfg.optimizer == "adamw8bit":
        if device.type != "cuda" or cfg.optimizer_cpu_offload:
            raise UserError(
                "train.optimizer=adamw8bit runs bitsandbytes' CUDA kernels: it needs train.device=cuda "
                "and train.optimizer_cpu_offload=false; use train.optimizer=adamw otherwise"
            )
        try:
            bnb = importlib.import_module("bitsandbytes")
        except ImportError:
            raise UserError(
                "train.optimizer=adamw8bit needs the bitsandbytes package, which is not installed "
                "(pip install bitsandbytes), or use train.optimizer=adamw"
            ) from None
        optimizer: Optimizer = bnb.optim.AdamW8bit(
            params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
        return optimizer
    # With CPU offload the parameters (and so the step) live on the CPU: no fused CUDA kernel there.
    fused = device.type == "cuda" and not cfg.optimizer_cpu_offload
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused)
