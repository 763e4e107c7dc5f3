"""What a finished run leaves behind: its weights with the records a loader needs, logged and registered.

A full run exports the EMA model to `RUN_DIR/final/` (`config.json`, `model.safetensors`,
`preprocessing.json`, `training.json`); a LoRA run exports the trained adapter to `RUN_DIR/lora/`. Exports
are collective: every rank calls them (the EMA is gathered), rank 0 writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.distributed as dist

from dualforce_core.config import DualForceConfig
from dualforce_core.data.training_dataset import TrainingDataset
from dualforce_core.models import DualForceModel
from dualforce_core.training.checkpoint import Progress
from dualforce_core.training.ema import EMA
from dualforce_core.training.preprocessing_record import build_preprocessing
from dualforce_core.training.tracking import RunLogger

FINAL_DIR = "final"
LORA_ARTIFACTS = "lora"
TRAINING_RECORD = "training.json"


def _write_record(out: Path, weights: str, progress: Progress, dataset: str) -> None:
    """`training.json`: which weights these are, and the step and data they come from."""
    record = {
        "weights": weights,
        "step": progress.step,
        "dataset": dataset,
        "lance_versions": progress.lance_versions,
    }
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def export_ema(
    ema: EMA,
    config: DualForceConfig,
    dataset: TrainingDataset,
    progress: Progress,
    run_dir: Path,
    is_main: bool,
) -> Path:
    """EMA weights into a fresh model, `save_pretrained` to RUN_DIR/final with the preprocessing the
    data had, so generation normalises its inputs as training did."""
    weights = ema.full_state_dict()
    out = run_dir / FINAL_DIR
    if is_main:
        model = DualForceModel(config.model)
        state = {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
        missing = {name for name, _ in model.named_parameters()} - set(state)
        if missing:
            raise RuntimeError(f"EMA lacks parameters {sorted(missing)[:5]}")
        model.load_state_dict(state, strict=False)
        model.save_pretrained(out)
        build_preprocessing(config, dataset).save(out)
        _write_record(out, "EMA", progress, dataset.dataset)
    _barrier()
    return out


def export_lora(
    model: DualForceModel,
    run_dir: Path,
    base_checkpoint: Path,
    progress: Progress,
    dataset: str,
    is_main: bool,
) -> Path:
    """The trained adapter (not its EMA: a short fine-tune's EMA still sits near the initial, zero
    update) to RUN_DIR/lora/ in PEFT's layout."""
    from dualforce_core.lora.files import save_lora  # peft is slow to import: LoRA runs only

    out = save_lora(model, run_dir, base_checkpoint)
    if is_main:
        _write_record(out, "trained adapter (not EMA)", progress, dataset)
    _barrier()
    return out


def lora_params(model: DualForceModel, base_checkpoint: Path) -> dict[str, Any]:
    """What MLflow records of a LoRA run beyond the config: the base, the adapter's size."""
    from dualforce_core.lora.adapter import adapter_num_bytes, trainable_parameter_count

    return {
        "lora.base_checkpoint": str(base_checkpoint.resolve()),
        "lora.trainable_parameters": trainable_parameter_count(model),
        "lora.adapter_bytes": adapter_num_bytes(model),
    }


def register(logger: RunLogger, exported: Path, is_lora: bool, registered_model: str | None) -> int | None:
    """Log the export as the run's artifacts and, if `train.registered_model` names a model, register
    it as a new version; rank 0 only. An adapter is registered as `<name>-lora`: it is not a model
    without its base."""
    artifacts = LORA_ARTIFACTS if is_lora else FINAL_DIR
    logger.log_artifacts(exported, artifacts)
    name = registered_model and registered_model + ("-lora" if is_lora else "")
    return logger.register_model(artifacts, name) if name else None
