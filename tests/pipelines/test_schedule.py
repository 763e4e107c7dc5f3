"""`retrain_schedule`: stopped unless turned on; when it fires, one train run per known dataset."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from pipelines.jobs import train_job
from pipelines.schedules import retrain_schedule


def test_retrain_schedule_requests_a_train_run_per_dataset() -> None:
    assert retrain_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert retrain_schedule.job_name == train_job.name
    with dg.instance_for_test() as instance:  # schedules need an instance with a persistent ref
        instance.add_dynamic_partitions("datasets", ["b_set", "a_set"])
        when = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
            requests = retrain_schedule(context)
    assert isinstance(requests, list)
    assert [r.partition_key for r in requests] == ["a_set", "b_set"]
    assert len({r.run_key for r in requests}) == 2


def test_retrain_schedule_with_no_datasets_requests_nothing() -> None:
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(UTC)) as context,
    ):
        assert retrain_schedule(context) == []
