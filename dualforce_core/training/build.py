"""What a run trains: its clips (the identity split), the table versions it reads, and its model (fresh,
or a frozen base with LoRA).

With `train.split=train` (the default) only the identity split's train clips are used, so evaluation's
held-out people are never trained on. A dataset with a single identity (a LoRA personalisation) or
feature tables without `clips` rows has no identity to hold out: it trains on all clips and says so.
A LoRA run (`lora.enabled`) fine-tunes peft adapters on a trained base (`--base-checkpoint`) whose own
weights stay frozen (docs/lora.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dualforce_core.config import DualForceConfig
from dualforce_core.data import lance_store
from dualforce_core.data.split import dataset_clips, select_split
from dualforce_core.data.training_set import read_training_set
from dualforce_core.errors import UserError
from dualforce_core.models import DualForceModel


def training_clips(config: DualForceConfig, dataset: str) -> tuple[str, list[str] | None, str | None]:
    """(split used, clip ids to train on or None for all, a note when `train` had to fall back to all)."""
    if config.train.split == "all":
        return "all", None, None
    if dataset not in lance_store.existing_ids("clips", "dataset"):
        return (
            "all",
            None,
            f"dataset {dataset!r} has no ingested clips rows (no identities): training on all clips",
        )
    clips = dataset_clips(dataset, config.eval)
    if len({clip.identity for clip in clips}) < 2:
        return (
            "all",
            None,
            f"dataset {dataset!r} has one identity, nothing to hold out: training on all clips",
        )
    train = select_split(clips, "train", config.eval.test_fraction)
    return "train", [clip.clip_id for clip in train], None


def pinned_versions(dataset: str, training_set: str | Path | None) -> dict[str, int] | None:
    """The table versions a vetted training set recorded (None: read each table's latest version)."""
    if training_set is None:
        return None
    manifest = read_training_set(Path(training_set))
    if manifest.dataset != dataset:
        raise UserError(f"training set {training_set} is of dataset {manifest.dataset!r}, not {dataset!r}")
    return manifest.versions


def check_lora_args(config: DualForceConfig, base_checkpoint: str | Path | None) -> None:
    """A LoRA run needs the base it fine-tunes; a full run must not be given one (it would be ignored)."""
    if config.lora.enabled and base_checkpoint is None:
        raise UserError(
            "lora.enabled=true fine-tunes adapters on a trained model: pass --base-checkpoint DIR "
            "(a saved DualForce model, e.g. RUN_DIR/final of a full run)"
        )
    if base_checkpoint is not None and not config.lora.enabled:
        raise UserError(
            "--base-checkpoint is only for LoRA runs: use a config with lora.enabled=true "
            "(configs/train/lora_tiny.yaml, configs/train/lora_base.yaml)"
        )


def build_model(config: DualForceConfig, base_checkpoint: str | Path | None) -> DualForceModel:
    """A fresh model (full run) or the frozen base with fresh LoRA adapters, identical on every rank."""
    torch.manual_seed(config.train.seed)
    if base_checkpoint is None:
        model = DualForceModel(config.model)
    else:
        # peft loads only for LoRA runs: a full run should not pay for importing it.
        from dualforce_core.lora.adapter import prepare_lora_training
        from dualforce_core.lora.files import load_base

        model = load_base(base_checkpoint, config.model)
        torch.manual_seed(config.train.seed)  # the adapters' initialisation
        model, _ = prepare_lora_training(model, config.lora)
    model.set_attention_backend(config.train.attention_backend)
    return model


def check_resume_lora(meta: dict[str, Any], config: DualForceConfig, path: Path) -> None:
    """A checkpoint resumes only into the same adapter layout (its state has those layers' tensors)."""
    saved = meta.get("config", {}).get("lora", {"enabled": False})
    ours = config.lora.model_dump(mode="json")
    if (saved["enabled"] or ours["enabled"]) and saved != ours:
        raise UserError(
            f"checkpoint {path} was written with lora={saved}, this run has lora={ours}: resume with the "
            "same lora section or start a new run dir"
        )
