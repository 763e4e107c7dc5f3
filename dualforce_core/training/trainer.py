"""The training loop: one readable pass per optimiser step, sharded with FSDP2, resumable exactly.

Per step: `grad_accum` micro-batches, each drawing a per-frame σ per modality (reference frame clean),
noising video latents and structure tokens along the flow path, dropping audio (and, if configured,
structure) for classifier-free guidance, and regressing velocities plus the lip-sync and FLAME
auxiliaries; then an FSDP-aware grad-norm clip, AdamW, the LR schedule and the EMA update. Every random
draw comes from one generator per rank that checkpoints save, so a killed and resumed run reproduces the
uninterrupted run's losses exactly (CPU, fp32).

With `lora.enabled` the model is a trained base (`--base-checkpoint`) with frozen weights and peft LoRA
adapters; only the adapters and the loss heads train, and the run exports `RUN_DIR/lora/` instead of an
EMA model (docs/lora.md).

With `train.split=train` (the default) only the identity split's train clips are used, so evaluation's
held-out people are never trained on. A dataset with a single identity (a LoRA personalisation) or
feature tables without `clips` rows has no identity to hold out: it trains on all clips and says so.
"""

from __future__ import annotations

import contextlib
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
from dualforce_core.data import lance_store
from dualforce_core.data.training_dataset import TrainingDataset, make_dataloader
from dualforce_core.errors import UserError
from dualforce_core.evaluation.split import dataset_clips, select_split
from dualforce_core.losses import DualForceLoss, LossInputs, LossOutput
from dualforce_core.models import LIP_KEYPOINTS, DualForceModel, ModelConfig
from dualforce_core.schedulers.flow_match import STRUCT_FRAME_DIM, VIDEO_FRAME_DIM, add_noise, velocity_target
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.timeline import pool_to_latent_frames
from dualforce_core.training.checkpoint import META_FILE, CheckpointManager, Progress, TrainState
from dualforce_core.training.ema import EMA
from dualforce_core.training.lr_schedule import build_lr_scheduler
from dualforce_core.training.optimizer import build_optimizer
from dualforce_core.training.parallelize import init_distributed, parallelize, set_gradient_sync
from dualforce_core.training.preprocessing_record import build_preprocessing
from dualforce_core.training.tracking import RunLogger

FINAL_DIR = "final"
LORA_ARTIFACTS = "lora"
TRAINING_RECORD = "training.json"


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


def lip_tokens(config: ModelConfig) -> list[int]:
    """Structure tokens holding LivePortrait's lip keypoints (token k holds keypoints k·g..k·g+g-1)."""
    group = config.num_keypoints // config.struct_tokens_per_frame
    return sorted({kp // group for kp in LIP_KEYPOINTS})


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward_loss(
    model: nn.Module,
    loss_fn: DualForceLoss,
    batch: dict[str, Any],
    sigma_sampler: SigmaSampler,
    generator: torch.Generator,
    config: DualForceConfig,
    autocast: bool = False,
    device: torch.device | None = None,
) -> tuple[LossOutput, int]:
    """The training objective of one batch (`video`, `struct`, `audio`, optional `flame`/`flame_mask`),
    and the number of tokens it fed the model. Every random draw comes from `generator` (CPU).
    `device`: where to compute (default: the parameters'; CPU-offloaded parameters are not there)."""
    cfg, mc, g = config.train, config.model, generator
    dev = device if device is not None else next(model.parameters()).device
    video = batch["video"].to(dev)
    struct = batch["struct"].to(dev)
    audio = batch["audio"].to(dev)
    b, _, frames, height, width = video.shape
    sigmas = sigma_sampler.sample(b, frames, g, dev)
    drop_audio = torch.rand(b, generator=g) < cfg.audio_dropout
    drop_struct = torch.rand(b, generator=g) < cfg.struct_dropout
    # Structure dropout: the generated frames' structure is pure noise, so the video tower learns to
    # work without it (the unconditional branch of structure guidance).
    generated = torch.arange(frames) > 0
    sigma_struct = torch.where((drop_struct[:, None] & generated).to(dev), 1.0, sigmas.struct)
    noise_v = torch.randn(video.shape, generator=g).to(dev)
    noise_s = torch.randn(struct.shape, generator=g).to(dev)
    noisy_v = add_noise(video, noise_v, sigmas.video, VIDEO_FRAME_DIM)
    noisy_s = add_noise(struct, noise_s, sigma_struct, STRUCT_FRAME_DIM)
    amp = torch.autocast(dev.type, torch.bfloat16) if autocast else contextlib.nullcontext()
    with amp:
        out = model(
            video=noisy_v,
            struct=noisy_s,
            sigma_video=sigmas.video,
            sigma_struct=sigma_struct,
            audio=audio,
            audio_drop=drop_audio.to(dev),
        )
    flame = batch.get("flame")
    loss = loss_fn(
        LossInputs(
            pred_video=out.video,
            target_video=velocity_target(video, noise_v),
            pred_struct=out.struct,
            target_struct=velocity_target(struct, noise_s),
            noisy_struct=noisy_s,
            sigma_struct=sigma_struct,
            # The lip-sync loss's view: HuBERT layers averaged, then each latent frame's tokens.
            audio=pool_to_latent_frames(
                audio.float().mean(dim=2),
                frames,
                mc.video_frames_per_latent,
                mc.audio_tokens_per_video_frame,
            ),
            flame_target=None if flame is None else flame.to(dev),
            flame_mask=None if flame is None else batch["flame_mask"].to(dev),
        )
    )
    ph, pw = mc.patch_size[1:]
    tokens = b * frames * ((height // ph) * (width // pw) + mc.struct_tokens_per_frame)
    return loss, tokens


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


def build_loss(config: DualForceConfig, token_dim: int, has_flame: bool) -> DualForceLoss:
    """The objective with the configured weights; FLAME off when the data has no FLAME rows."""
    mc, weights = config.model, config.train.loss_weights
    if not has_flame:
        weights = weights.model_copy(update={"flame": 0.0})
    return DualForceLoss(
        weights,
        struct_tokens=mc.struct_tokens_per_frame,
        struct_token_dim=token_dim,
        audio_dim=mc.audio_dim,
        lip_tokens=lip_tokens(mc),
        flame_dim=mc.flame_dim,
    )


class Trainer:
    """Builds data, model, loss, optimiser and state from a config; `fit()` trains to `train.max_steps`."""

    def __init__(
        self,
        config: DualForceConfig,
        dataset: str,
        run_dir: str | Path | None = None,
        resume: str | None = None,
        base_checkpoint: str | Path | None = None,
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
        pinned = None
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
        # Single-process GPU runs have no FSDP mixed-precision policy: autocast instead.
        self.autocast = bf16 and self.dist.mesh is None and self.device.type == "cuda"
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

    def export_ema(self) -> Path:
        """EMA weights into a fresh model, `save_pretrained` to RUN_DIR/final (collective; rank 0 writes)."""
        weights = self.ema.full_state_dict()
        out = self.run_dir / FINAL_DIR
        if self.dist.is_main:
            model = DualForceModel(self.config.model)
            state = {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
            missing = {name for name, _ in model.named_parameters()} - set(state)
            if missing:
                raise RuntimeError(f"EMA lacks parameters {sorted(missing)[:5]}")
            model.load_state_dict(state, strict=False)
            model.save_pretrained(out)
            build_preprocessing(self.config, self.dataset).save(out)
            info = self._training_record("EMA")
            (out / TRAINING_RECORD).write_text(json.dumps(info, indent=1) + "\n")
        if dist.is_initialized():
            dist.barrier()
        return out

    def _training_record(self, weights: str) -> dict[str, Any]:
        return {
            "weights": weights,
            "step": self.progress.step,
            "dataset": self.dataset.dataset,
            "lance_versions": self.progress.lance_versions,
        }

    def export_lora(self, base_checkpoint: Path) -> Path:
        """The trained adapter (not its EMA: a short fine-tune's EMA still sits near the initial,
        zero update) to RUN_DIR/lora/ in PEFT's layout (collective; rank 0 writes)."""
        from dualforce_core.lora.files import save_lora

        out = save_lora(self.model, self.run_dir, base_checkpoint)
        if self.dist.is_main:
            record = self._training_record("trained adapter (not EMA)")
            (out / TRAINING_RECORD).write_text(json.dumps(record, indent=1) + "\n")
        if dist.is_initialized():
            dist.barrier()
        return out

    def lora_params(self, base_checkpoint: Path) -> dict[str, Any]:
        """What MLflow records of a LoRA run beyond the config: the base, the adapter's size."""
        from dualforce_core.lora.adapter import adapter_num_bytes, trainable_parameter_count

        return {
            "lora.base_checkpoint": str(base_checkpoint.resolve()),
            "lora.trainable_parameters": trainable_parameter_count(self.model),
            "lora.adapter_bytes": adapter_num_bytes(self.model),
        }

    def fit(self) -> TrainResult:
        cfg = self.config.train
        flat = flatten(self.config)
        flat.update({f"lance.{k}_version": v for k, v in self.progress.lance_versions.items()})
        flat.update({"data.dataset": self.dataset.dataset, "world_size": self.dist.world_size})
        flat.update({"data.split": self.dataset.split, "data.split_clips": len(self.dataset)})
        if self.base_checkpoint is not None:
            flat.update(self.lora_params(self.base_checkpoint))
        self.logger.log_params(flat)
        self.logger.set_tags({"run_dir": self.run_dir, "notes": "; ".join(self.notes) or "-"})
        for note in self.notes:
            if self.dist.is_main:
                print(f"dualforce train: {note}")
        batches = self._batches()
        saved = self.resume_from
        last_loss = None
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
            if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
                saved = self.save_checkpoint()
        if saved is None or saved.name != f"step-{self.progress.step}":
            saved = self.save_checkpoint()
        is_lora = self.base_checkpoint is not None
        exported = self.export_lora(self.base_checkpoint) if self.base_checkpoint else self.export_ema()
        artifacts = LORA_ARTIFACTS if is_lora else FINAL_DIR
        # The adapter is its own registered model: it is not a model without its base.
        registry_name = cfg.registered_model and cfg.registered_model + ("-lora" if is_lora else "")
        registered = None
        if self.dist.is_main:
            self.logger.log_artifacts(exported, artifacts)
            if registry_name:
                registered = self.logger.register_model(artifacts, registry_name)
        return TrainResult(
            run_dir=self.run_dir,
            step=self.progress.step,
            last_loss=last_loss,
            checkpoint=saved,
            final_dir=None if is_lora else exported,
            lance_versions=dict(self.progress.lance_versions),
            mlflow_run_id=self.logger.run_id,
            registered_version=registered,
            is_main=self.dist.is_main,
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
) -> TrainResult:
    """Build a `Trainer`, train to `train.max_steps`, export the EMA model (a LoRA run: the adapter);
    always releases the group."""
    trainer = Trainer(config, dataset, run_dir, resume, base_checkpoint)
    try:
        return trainer.fit()
    finally:
        trainer.close()
