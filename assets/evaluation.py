"""`evaluation`: the trained model scored on the dataset's held-out clips (FID, FVD, Sync-C/D, CSIM, ...)."""

import math

import dagster as dg

from dualforce_core.evaluation.evaluate import evaluate
from pipelines.failures import user_errors_as_failures
from pipelines.partitions import datasets_partitions
from pipelines.resources import DualForceSettings


def _latest_model(context: dg.AssetExecutionContext) -> str:
    """The `final_model` path that this partition's latest `dualforce_checkpoint` materialisation reported."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("dualforce_checkpoint"), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None or "final_model" not in materialization.metadata:
        raise dg.Failure(
            f"no dualforce_checkpoint for dataset {context.partition_key!r}: materialise it first"
        )
    return str(materialization.metadata["final_model"].value)


@dg.asset(
    deps=["dualforce_checkpoint"],
    partitions_def=datasets_partitions,
    group_name="evaluation",
    pool="gpu",
    kinds={"pytorch", "mlflow"},
)
def evaluation(context: dg.AssetExecutionContext, settings: DualForceSettings) -> dg.MaterializeResult:
    """Report under `$DUALFORCE_HOME/reports/<dataset>-<run>/` (report.md, report.json, side-by-side videos)."""
    dataset = context.partition_key
    model = _latest_model(context)
    with user_errors_as_failures():
        report = evaluate(model, dataset, settings.config(), name=f"{dataset}-{context.run.run_id[:8]}")
    metrics = {k: round(v, 4) for k, v in report.metrics.items() if not math.isnan(v)}
    return dg.MaterializeResult(
        metadata={
            "model": dg.MetadataValue.path(model),
            "report_dir": dg.MetadataValue.path(str(report.report_dir)),
            "report": dg.MetadataValue.md(report.markdown),
            "metrics": dg.MetadataValue.json(metrics),
            "mlflow_run_id": report.mlflow_run_id or "",
            **{f"eval/{k}": v for k, v in metrics.items()},
        }
    )
