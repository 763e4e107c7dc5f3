"""The training loop: one readable pass per optimiser step, sharded with FSDP2, resumable exactly.

Per step: `grad_accum` micro-batches of the objective (`objective.forward_loss`), then an FSDP-aware
grad-norm clip, AdamW, the LR schedule and the EMA update. Every random draw comes from one generator
per rank that checkpoints save, so a killed and resumed run reproduces the uninterrupted run's losses
exactly (CPU, fp32). What the run trains (its split, its model or LoRA adapters) is `build`'s; what it
leaves behind (the EMA model or the adapter, registered) is `export`'s.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dualforce_core import paths
from dualforce_core.config import DualForceConfig, flatten
from dualforce_core.data.training_dataset import TrainingDataset, make_dataloader
from dualforce_core.errors import UserError
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.training.build import (
    build_model,
    check_lora_args,
    check_resume_lora,
    pinned_versions,
    training_clips,
)
from dualforce_core.training.checkpoint import META_FILE, CheckpointManager, Progress, TrainState
from dualforce_core.training.ema import EMA
from dualforce_core.training.export import export_ema, export_lora, lora_params, register
from dualforce_core.training.lr_schedule import build_lr_scheduler
from dualforce_core.training.objective import build_loss, forward_loss
from dualforce_core.training.optimizer import build_optimizer
from dualforce_core.training.parallelize import bf16_compute, init_distributed, parallelize, set_gradient_sync
from dualforce_core.training.tracking import RunLogger


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    last_loss: float | None
    checkpoint: Path | None
    final_dir: Path | None  # the EMA model of a full run; None for a LoRA run
    lance_versions: dict[str, int]
    mlflow_run_id: str | None
    registered_version: int | None
    is_main: bool
    lora_dir: Path | None = None  # the adapter a LoRA run exports


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    """Builds data, model, loss, optimiser and state from a config; `fit()` trains to `train.max_steps`."""

    def __init__(
        self,
        config: DualForceConfig,
        dataset: str,
        run_dir: str | Path | None = None,
        resume: str | None = None,
        base_checkpoint: str | Path | None = None,
        training_set: str | Path | None = None,
    ) -> None:
        check_lora_args(config, base_checkpoint)
        self.config = config
        self.base_checkpoint = Path(base_checkpoint) if base_checkpoint is not None else None
        cfg = config.train
        self.dist = init_distributed(cfg.device, single_rank_group=cfg.optimizer_cpu_offload)
        self.device = self.dist.device
        self.run_dir = Path(run_dir) if run_dir else paths.runs_dir() / cfg.name
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", cfg.keep_last)
        self.resume_from = self.checkpoints.resolve(resume)
        pinned = pinned_versions(dataset, training_set)
        if self.resume_from is not None:
            meta = json.loads((self.resume_from / META_FILE).read_text())
            check_resume_lora(meta, config, self.resume_from)
            pinned = meta["progress"]["lance_versions"]

        split, clip_ids, split_note = training_clips(config, dataset)
        self.dataset = TrainingDataset(dataset, config.model, pinned, clip_ids, split)
        self.loader = make_dataloader(
            self.dataset, cfg.batch_size, self.dist.rank, self.dist.world_size, cfg.seed, cfg.num_workers
        )
        self.notes: list[str] = [split_note] if split_note else []
        if cfg.loss_weights.flame > 0 and not self.dataset.has_flame:
            self.notes.append(f"dataset {dataset!r} has no flame_params rows: FLAME loss off")

        self.model = build_model(config, self.base_checkpoint)  # before sharding: LoRA layers included
        self.loss_fn = build_loss(config, self.model.projector.token_dim, self.dataset.has_flame)
        bf16, offload = cfg.mixed_precision == "bf16", cfg.optimizer_cpu_offload
        parallelize(self.model, self.dist, cfg.activation_checkpointing, cfg.compile, bf16, offload)
        parallelize(self.loss_fn, self.dist, False, False, bf16, offload)
        self.autocast = bf16_compute(self.dist, bf16) == "autocast"
        self.modules = nn.ModuleDict({"model": self.model, "loss": self.loss_fn})
        # After sharding (fully_shard replaces parameter objects): everything of a full run; the
        # adapters and the loss heads of a LoRA run.
        named = [(n, p) for n, p in self.modules.named_parameters() if p.requires_grad]
        self.trainable = [p for _, p in named]
        self.optimizer = build_optimizer(self.trainable, cfg, self.device)
        self.lr_scheduler = build_lr_scheduler(
            self.optimizer, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio
        )
        self.ema = EMA(named, cfg.ema_decay)
        self.state = TrainState(self.modules, self.optimizer, self.ema, self.lr_scheduler)
        self.sigma_sampler = SigmaSampler(config.diffusion)
        self.generator = torch.Generator().manual_seed(cfg.seed + 7919 * self.dist.rank)
        self.progress = Progress(lance_versions=dict(self.dataset.versions))
        if self.resume_from is not None:
            self.progress, _ = self.checkpoints.load(
                self.resume_from, self.state, self.generator, config.model.model_dump(mode="json")
            )
        self.logger = RunLogger(self.run_dir, self.dist.is_main, cfg.mlflow, cfg.experiment, cfg.name)

    # ------------------------------------------------------------------------------------------- data

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Endless batches from the recorded data position, advancing it as they are consumed."""
        sampler = self.loader.batch_sampler
        while True:
            sampler.set_epoch(self.progress.epoch, self.progress.batch_index)  # type: ignore[union-attr]
            for batch in self.loader:
                self.progress.batch_index += 1
                yield batch
            self.progress.epoch += 1
            self.progress.batch_index = 0

    # ------------------------------------------------------------------------------------------- step

    def _clip_gradients(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.config.train.clip_grad)
        full = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        return float(full)

    def _mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        if self.dist.world_size == 1:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(keys, (t / self.dist.world_size).tolist()))

    def train_step(self, batches: Iterator[dict[str, Any]]) -> dict[str, float]:
        """One optimiser step over `grad_accum` micro-batches; returns the step's metrics."""
        cfg = self.config.train
        start = time.perf_counter()
        totals: dict[str, float] = {}
        tokens = 0
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            set_gradient_sync([self.model, self.loss_fn], micro == cfg.grad_accum - 1)
            loss, n = forward_loss(
                self.model,
                self.loss_fn,
                batch,
                self.sigma_sampler,
                self.generator,
                self.config,
                self.autocast,
                self.device,
            )
            (loss.total / cfg.grad_accum).backward()
            for key, value in loss.components.items():
                totals[key] = totals.get(key, 0.0) + value / cfg.grad_accum
            tokens += n
        grad_norm = self._clip_gradients()
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.trainable)
        self.progress.step += 1
        losses = self._mean_over_ranks(totals)
        seconds = time.perf_counter() - start
        metrics = {"train/loss": losses.pop("total")}
        metrics.update({f"train/{key}": value for key, value in losses.items()})
        metrics["train/lr"] = float(self.lr_scheduler.get_last_lr()[0])
        metrics["train/grad_norm"] = grad_norm
        metrics["perf/tokens_per_s"] = tokens * self.dist.world_size / seconds
        metrics["perf/step_s"] = seconds
        metrics["perf/memory_mb"] = _memory_mb(self.device)
        return metrics

    # ------------------------------------------------------------------------------------------- run

    def save_checkpoint(self) -> Path:
        meta = {
            "dataset": self.dataset.dataset,
            "split": self.dataset.split,
            "split_clips": len(self.dataset),
            "world_size": self.dist.world_size,
            "model_config": self.config.model.model_dump(mode="json"),
            "config": self.config.model_dump(mode="json"),
            "base_checkpoint": str(self.base_checkpoint.resolve()) if self.base_checkpoint else None,
        }
        path = self.checkpoints.save(self.progress, self.state, self.generator, meta)
        self.logger.set_tags({"checkpoint": path})
        return path

    def fit(self) -> TrainResult:
        cfg = self.config.train
        flat = flatten(self.config)
        flat.update({f"lance.{k}_version": v for k, v in self.progress.lance_versions.items()})
        flat.update({"data.dataset": self.dataset.dataset, "world_size": self.dist.world_size})
        flat.update({"data.split": self.dataset.split, "data.split_clips": len(self.dataset)})
        if self.base_checkpoint is not None:
            flat.update(lora_params(self.model, self.base_checkpoint))
        self.logger.log_params(flat)
        self.logger.set_tags({"run_dir": self.run_dir, "notes": "; ".join(self.notes) or "-"})
        for note in self.notes:
            if self.dist.is_main:
                print(f"dualforce train: {note}")
        batches = self._batches()
        saved = self.resume_from
        last_loss = None
        # A progress line every 5 % of the run (and at its end): a long run is never silent on the console
        # (the Dagster Pipes launch shows the child's stdout too); metrics.jsonl has every step.
        report_every = max(1, cfg.max_steps // 20)
        started, first_step = time.monotonic(), self.progress.step
        while self.progress.step < cfg.max_steps:
            try:
                metrics = self.train_step(batches)
            except torch.OutOfMemoryError:
                raise UserError(
                    f"out of memory at step {self.progress.step + 1} with train.batch_size="
                    f"{cfg.batch_size}: lower the batch size (use train.grad_accum to keep the effective "
                    "batch), set train.activation_checkpointing=true, or use train.mixed_precision=bf16"
                ) from None
            step = self.progress.step
            last_loss = metrics["train/loss"]
            self.logger.log_step(step, metrics, to_mlflow=step % cfg.log_every == 0 or step == cfg.max_steps)
            if self.dist.is_main and (step % report_every == 0 or step == cfg.max_steps):
                rate = (step - first_step) / max(time.monotonic() - started, 1e-9)
                print(
                    f"dualforce train: step {step}/{cfg.max_steps}, loss {last_loss:.4f}, {rate:.1f} steps/s",
                    flush=True,
                )
            if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
                saved = self.save_checkpoint()
        if saved is None or saved.name != f"step-{self.progress.step}":
            saved = self.save_checkpoint()
        is_main = self.dist.is_main
        is_lora = self.base_checkpoint is not None
        if self.base_checkpoint is not None:
            exported = export_lora(
                self.model, self.run_dir, self.base_checkpoint, self.progress, self.dataset.dataset, is_main
            )
        else:
            exported = export_ema(self.ema, self.config, self.dataset, self.progress, self.run_dir, is_main)
        registered = register(self.logger, exported, is_lora, cfg.registered_model) if is_main else None
        return TrainResult(
            run_dir=self.run_dir,
            step=self.progress.step,
            last_loss=last_loss,
            checkpoint=saved,
            final_dir=None if is_lora else exported,
            lance_versions=dict(self.progress.lance_versions),
            mlflow_run_id=self.logger.run_id,
            registered_version=registered,
            is_main=is_main,
            lora_dir=exported if is_lora else None,
        )

    def close(self) -> None:
        self.logger.close()
        if dist.is_initialized():
            dist.destroy_process_group()


def train(
    config: DualForceConfig,
    dataset: str,
    run_dir: str | Path | None = None,
    resume: str | None = None,
    base_checkpoint: str | Path | None = None,
    training_set: str | Path | None = None,
) -> TrainResult:
    """Build a `Trainer`, train to `train.max_steps`, export the EMA model (a LoRA run: the adapter);
    always releases the group. `training_set`: a manifest whose vetted table versions to read."""
    trainer = Trainer(config, dataset, run_dir, resume, base_checkpoint, training_set)
    try:
        return trainer.fit()
    finally:
        trainer.close()
