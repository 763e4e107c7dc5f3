"""`retrain_schedule`: re-train every known dataset on its latest data (stopped until someone turns it on)."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import train_job
from pipelines.partitions import datasets_partitions

RETRAIN_CRON = "0 3 * * 0"  # Sundays 03:00


@dg.schedule(
    job=train_job,
    cron_schedule=RETRAIN_CRON,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="weekly: rebuild the training set from the latest Lance versions and train, per dataset",
)
def retrain_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    datasets = context.instance.get_dynamic_partitions(datasets_partitions.name or "datasets")
    stamp = context.scheduled_execution_time.isoformat()
    return [dg.RunRequest(run_key=f"retrain:{name}:{stamp}", partition_key=name) for name in sorted(datasets)]


ALL_SCHEDULES = [retrain_schedule]
