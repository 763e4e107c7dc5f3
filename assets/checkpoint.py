"""`dualforce_checkpoint`: training, launched out of process through Dagster Pipes.

`launch_training` (shared with `lora_adapter`) opens the MLflow run (so the run id exists before any
process starts) and launches `pipelines.train_entry` (under `torchrun` when `compute.nproc` > 1) with
`MLFLOW_RUN_ID` set; the asset materialises with what rank 0 reports: final losses, checkpoint and model
paths, Lance versions.
"""

import dagster as dg

from pipelines.launchers import launch_training
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
    config = settings.config()
    _, result = launch_training(
        context,
        pipes_client,
        compute,
        mlflow,
        experiment=config.train.experiment,
        run_name=f"{context.partition_key}-{context.run.run_id[:8]}",
        kind="training",
        config_path=settings.resolved_config_path(),
        overrides=settings.all_overrides(),
    )
    return result
