"""The process Dagster Pipes launches for `dualforce_checkpoint` and `lora_adapter`: train, then report
back from rank 0.

Same arguments as `dualforce train` (`--base-checkpoint DIR` makes it a LoRA run). Only rank 0 opens the Pipes channel (every rank reporting would
duplicate the materialisation); other ranks just train.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster_pipes import PipesContext, open_dagster_pipes

from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.errors import UserError
from dualforce_core.training.tracking import METRICS_FILE
from dualforce_core.training.trainer import TrainResult, train


def _last_metrics(result: TrainResult) -> dict[str, float]:
    path = result.run_dir / METRICS_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    return {k: v for k, v in json.loads(lines[-1]).items() if k != "step"} if lines else {}


def _path(path: Path | str) -> dict[str, str]:
    return {"raw_value": str(path), "type": "path"}


def _outputs(result: TrainResult) -> dict[str, Any]:
    """What the run exported: the EMA model of a full run, or the adapter of a LoRA run (its size, its base)."""
    if result.lora_dir is None:
        return {"final_model": _path(str(result.final_dir))}
    from dualforce_core.lora.files import read_adapter_info  # peft is slow to import: LoRA runs only

    info = read_adapter_info(result.lora_dir)
    return {
        "adapter_dir": _path(result.lora_dir),
        "adapter_bytes": info.size_bytes,
        "trainable_parameters": info.parameters,
        "lora_rank": info.rank,
        "lora_groups": ",".join(info.groups),
        "base_checkpoint": _path(info.base_checkpoint) if info.base_checkpoint else None,
    }


def _report(pipes: PipesContext, result: TrainResult) -> None:
    metadata: dict[str, Any] = {
        "step": result.step,
        "last_loss": result.last_loss,
        "checkpoint": _path(str(result.checkpoint)),
        **_outputs(result),
        "run_dir": _path(result.run_dir),
        "mlflow_run_id": result.mlflow_run_id or "",
        "registered_version": result.registered_version,
        "lance_versions": {"raw_value": result.lance_versions, "type": "json"},
        "final_metrics": {"raw_value": _last_metrics(result), "type": "json"},
    }
    versions = ",".join(f"{k}={v}" for k, v in sorted(result.lance_versions.items()))
    pipes.report_asset_materialization(
        metadata={k: v for k, v in metadata.items() if v is not None},
        data_version=f"{result.mlflow_run_id}:{result.step}:{versions}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train DualForce for a Dagster Pipes launch (rank 0 reports)."
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--base-checkpoint", help="a LoRA run: the frozen base model's directory")
    parser.add_argument("--training-set", help="a training set manifest: read the table versions it vetted")
    add_config_args(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        if int(os.environ.get("RANK", "0")) != 0:
            train(config, args.dataset, args.run_dir, "auto", args.base_checkpoint, args.training_set)
            return 0
        with open_dagster_pipes() as pipes:
            result = train(
                config, args.dataset, args.run_dir, "auto", args.base_checkpoint, args.training_set
            )
            _report(pipes, result)
    except UserError as err:
        print(f"train_entry: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
