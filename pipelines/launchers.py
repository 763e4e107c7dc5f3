"""Training out of process: plain Python for one process, `torchrun` for more, launched through Dagster Pipes.

Both run `pipelines.train_entry`, which calls the trainer and, on rank 0, reports back through Dagster
Pipes; the trainer itself knows nothing of Dagster. `launch_training` is the one launch every training
asset (full and LoRA) goes through; it hands on the dataset's `training_set` manifest, so training reads
the Lance versions the blocking checks vetted.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from dualforce_core import paths
from dualforce_core.data.training_set import manifest_path
from dualforce_core.training.mlflow_runs import create_run, mark_failed
from pipelines.resources import ComputeSettings, MlflowSettings


def train_command(
    dataset: str,
    run_dir: Path,
    config_path: str | None,
    overrides: list[str],
    nproc: int,
    base_checkpoint: Path | None = None,
    training_set: Path | None = None,
) -> list[str]:
    """`base_checkpoint` makes it a LoRA run: adapters trained on that frozen model; `training_set` pins
    the table versions to those its manifest recorded."""
    entry = ["-m", "pipelines.train_entry", "--dataset", dataset, "--run-dir", str(run_dir)]
    if config_path:
        entry += ["--config", config_path]
    if base_checkpoint is not None:
        entry += ["--base-checkpoint", str(base_checkpoint)]
    if training_set is not None:
        entry += ["--training-set", str(training_set)]
    entry += overrides
    if nproc > 1:
        launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
        return [sys.executable, *launcher, *entry]
    return [sys.executable, *entry]


@contextlib.contextmanager
def _dagster_internal_warnings_silenced() -> Iterator[None]:
    """Dagster 1.13's Pipes calls its own preview `expected_writer_count` and deprecated `context.run_id`
    inside `PipesSubprocessClient.run`: warnings about Dagster's code, not ours, printed at every launch.
    Silenced for this call only; a Dagster upgrade that drops them makes this a no-op."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expected_writer_count", category=dg.PreviewWarning)
        warnings.filterwarnings("ignore", message=".*run_id is deprecated", category=DeprecationWarning)
        yield


def launch_training(
    context: dg.AssetExecutionContext,
    pipes_client: dg.PipesSubprocessClient,
    compute: ComputeSettings,
    mlflow: MlflowSettings,
    *,
    experiment: str,
    run_name: str,
    kind: str,
    config_path: str | None,
    overrides: list[str],
    base_checkpoint: Path | None = None,
) -> tuple[Path, dg.MaterializeResult]:
    """Train this partition's dataset; returns the run dir and what rank 0 reported.

    The MLflow run is opened here, so its id exists before any process starts and every rank logs into
    it; a launch that fails or is interrupted marks it failed rather than leaving it RUNNING.
    """
    dataset = context.partition_key
    tags = {"dagster.run_id": context.run.run_id, "dataset": dataset, "dualforce.kind": kind}
    run_id = create_run(experiment, run_name, tags, mlflow.uri())
    run_dir = paths.runs_dir() / dataset / run_id
    device_override = f"train.device={compute.device.split(':')[0]}"
    manifest = manifest_path(dataset)  # the versions the blocking checks vetted, when the graph built one
    command = train_command(
        dataset,
        run_dir,
        config_path,
        [*overrides, device_override],
        compute.nproc,
        base_checkpoint,
        manifest if manifest.is_file() else None,
    )
    env = {
        paths.HOME_ENV: str(paths.home()),
        paths.WEIGHTS_ENV: str(paths.weights_dir()),
        "MLFLOW_TRACKING_URI": mlflow.uri(),
        "MLFLOW_RUN_ID": run_id,
    }
    context.log.info(f"launching {' '.join(command)} (MLflow run {run_id})")
    try:
        with _dagster_internal_warnings_silenced():
            invocation = pipes_client.run(command=command, context=context, env=env)
    except BaseException:  # an interrupted run (Ctrl-C) too: never leave the MLflow run RUNNING
        mark_failed(run_id, mlflow.uri())
        raise
    return run_dir, invocation.get_materialize_result()
