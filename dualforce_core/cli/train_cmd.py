"""`dualforce train`: train DualForce on one dataset's feature tables (one process, torchrun or accelerate)."""

from __future__ import annotations

import argparse

from dualforce_core.cli.common import add_config_args, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the model on a dataset's feature tables (FSDP2 under torchrun, resumable)",
        description="Reads video_latents, struct_features, audio_features (and flame_params if present) of "
        "--dataset, pinned to their current Lance versions, and trains with the train.* settings. Writes "
        "checkpoints to RUN_DIR/checkpoints/step-N, per-step losses to RUN_DIR/metrics.jsonl, the EMA "
        "model to RUN_DIR/final, and logs to MLflow (MLFLOW_TRACKING_URI, default sqlite in "
        "$DUALFORCE_HOME). Several processes: `torchrun --nproc_per_node N -m dualforce_core.cli.main "
        "train ...` or `accelerate launch --config_file configs/accelerate/single_node.yaml ...` "
        "(see docs/training.md). LoRA fine-tuning (a config with lora.enabled, e.g. "
        "configs/train/lora_tiny.yaml): --base-checkpoint DIR is the frozen base; the adapter is exported "
        "to RUN_DIR/lora/ instead of RUN_DIR/final (see docs/lora.md).",
    )
    parser.add_argument("--dataset", required=True, help="dataset name, as ingested and extracted")
    parser.add_argument("--max-steps", type=int, help="optimiser steps to train to (train.max_steps)")
    parser.add_argument(
        "--checkpoint-every", type=int, help="steps between checkpoints (train.checkpoint_every)"
    )
    parser.add_argument(
        "--base-checkpoint",
        metavar="DIR",
        help="LoRA runs only (lora.enabled): the saved model (config.json + model.safetensors) to adapt",
    )
    parser.add_argument("--run-dir", help="run directory (default: $DUALFORCE_HOME/runs/<train.name>)")
    parser.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="`auto`: continue from the newest complete checkpoint in the run dir (fresh start if none); "
        "or a step-N checkpoint directory",
    )
    parser.add_argument(
        "--training-set",
        metavar="MANIFEST",
        help="read the Lance versions a training set manifest recorded ($DUALFORCE_HOME/training_sets/"
        "<dataset>.json, the ones the pipeline's checks vetted) instead of each table's latest",
    )
    add_config_args(parser)
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    if args.max_steps is not None:
        args.overrides.append(f"train.max_steps={args.max_steps}")
    if args.checkpoint_every is not None:
        args.overrides.append(f"train.checkpoint_every={args.checkpoint_every}")
    config = config_from_args(args)
    from dualforce_core.training.trainer import train  # torch and the model load only for this command

    result = train(config, args.dataset, args.run_dir, args.resume, args.base_checkpoint, args.training_set)
    if result.is_main:
        exported = f"LoRA adapter {result.lora_dir}" if result.lora_dir else f"EMA model {result.final_dir}"
        print(
            f"trained {args.dataset} to step {result.step} (last loss {result.last_loss}); checkpoint "
            f"{result.checkpoint}; {exported}; Lance versions {result.lance_versions}"
            + (f"; MLflow run {result.mlflow_run_id}" if result.mlflow_run_id else "")
            + (f"; registered version {result.registered_version}" if result.registered_version else "")
        )
    return 0
