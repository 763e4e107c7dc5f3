"""Optimisation, parallelism, checkpointing and loss weights."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dualforce_core.config_model import ConfigModel
from dualforce_core.models.attention import AttentionBackend


class LossWeights(ConfigModel):
    video: float = 1.0
    struct: float = 1.0
    lipsync: float = 0.1
    flame: float = 0.1


class TrainConfig(ConfigModel):
    name: str = "dualforce"
    seed: int = 0
    batch_size: int = 1
    grad_accum: int = Field(1, ge=1)
    max_steps: int = 1000
    lr: float = 1e-4
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine decay ends at lr * min_lr_ratio")
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    clip_grad: float = 1.0
    ema_decay: float = Field(
        0.999, description="EMA of the trainable parameters (LoRA runs: the adapters only)"
    )
    optimizer: Literal["adamw", "adamw8bit"] = Field(
        "adamw", description="adamw8bit: bitsandbytes' 8-bit AdamW states (CUDA only, bitsandbytes installed)"
    )
    optimizer_cpu_offload: bool = Field(
        False,
        description="keep parameters, gradients and optimiser state on the CPU between uses (FSDP2 "
        "CPUOffloadPolicy, also on one GPU); the optimiser step runs on the CPU",
    )
    audio_dropout: float = Field(0.1, ge=0, le=1)
    struct_dropout: float = Field(0.0, ge=0, le=1)
    loss_weights: LossWeights = LossWeights()
    mixed_precision: Literal["no", "bf16"] = "no"
    activation_checkpointing: bool = False
    attention_backend: AttentionBackend = Field("sdpa", description="flash needs flash-attn (a CUDA machine)")
    compile: bool = False
    checkpoint_every: int = 500
    keep_last: int = 3
    log_every: int = 10
    num_workers: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mlflow: bool = Field(
        True, description="log to MLflow (rank 0); the JSONL log in the run dir is always written"
    )
    experiment: str = "dualforce-train"
    registered_model: str | None = Field("dualforce", description="model registry name for the final export")
    split: Literal["train", "all"] = Field(
        "train",
        description="train: only the identity split's train clips (eval.identity, eval.test_fraction), so "
        "evaluation's held-out people are never trained on; all: every clip. A dataset with one identity, "
        "or feature tables without ingested `clips` rows, has nothing to hold out: it trains on all clips",
    )
