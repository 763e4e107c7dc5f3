"""`dualforce_checkpoint`: training, launched out of process through Dagster Pipes.

The asset opens the MLflow run (so the run id exists before any process starts), launches
`pipelines.train_entry` (under `torchrun` when `compute.nproc` > 1) with `MLFLOW_RUN_ID` set, and
materialises with what rank 0 reports: final losses, checkpoint and model paths, Lance versions.
"""

import dagster as dg

from dualforce_core import paths
from dualforce_core.pipeline_support.mlflow_runs import create_run, mark_failed
from pipelines.launchers import train_command
from pipelines.partitions import datasets_partitions
from pipelines.resources import ComputeSettings, DualForceSettings, MlflowSettings


@dg.asset(
    deps=["training_set"],
    partitions_def=datasets_partitions,
    group_name="training",
    pool="gpu",
    kinds={"pytorch", "mlflow"},
)
def dualforce_checkpoint(
    context: dg.AssetExecutionContext,
    settings: DualForceSettings,
    compute: ComputeSettings,
    mlflow: MlflowSettings,
    pipes_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """A trained DualForce model (EMA weights in `final/`, resumable checkpoints) for this dataset."""
    dataset = context.partition_key
    config = settings.config()
    tags = {"dagster.run_id": context.run.run_id, "dataset": dataset, "dualforce.kind": "training"}
    run_id = create_run(config.train.experiment, f"{dataset}-{context.run.run_id[:8]}", tags, mlflow.uri())
    run_dir = paths.runs_dir() / dataset / run_id
    overrides = [*settings.all_overrides(), f"train.device={compute.device.split(':')[0]}"]
    command = train_command(dataset, run_dir, settings.resolved_config_path(), overrides, compute.nproc)
    env = {
        paths.HOME_ENV: str(paths.home()),
        paths.WEIGHTS_ENV: str(paths.weights_dir()),
        "MLFLOW_TRACKING_URI": mlflow.uri(),
        "MLFLOW_RUN_ID": run_id,
    }
    context.log.info(f"launching {' '.join(command)} (MLflow run {run_id})")
    try:
        invocation = pipes_client.run(command=command, context=context, env=env)
    except BaseException:  # an interrupted run (Ctrl-C) too: never leave the MLflow run RUNNING
        mark_failed(run_id, mlflow.uri())
        raise
    return invocation.get_materialize_result()
