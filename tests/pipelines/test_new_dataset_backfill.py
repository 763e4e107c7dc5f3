"""A dataset folder dropped under raw/ becomes a partition and a run; a corrupt file in it is quarantined."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from graph_fixtures import TINY_OVERRIDES, write_dataset

from assets.clips import ingest, reject_rate_below_threshold
from assets.raw_videos import raw_videos
from dualforce_core.data.lance_store import read_rows
from pipelines.jobs import inventory_job
from pipelines.resources import DualForceSettings
from pipelines.sensors import new_dataset_sensor


def test_dropped_folder_with_a_broken_file_ends_in_rejects_not_a_failed_run(dualforce_home: Path) -> None:
    write_dataset(dualforce_home, "drop_in", clips=1, broken=True)
    settings = DualForceSettings(home=str(dualforce_home), overrides=TINY_OVERRIDES)
    instance = dg.DagsterInstance.ephemeral()

    tick = new_dataset_sensor(dg.build_sensor_context(instance=instance, resources={"settings": settings}))
    assert isinstance(tick, dg.SensorResult)
    [add] = tick.dynamic_partitions_requests or []
    assert isinstance(add, dg.AddDynamicPartitionsRequest) and list(add.partition_keys) == ["drop_in"]
    instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    [request] = tick.run_requests or []
    assert request.partition_key == "drop_in" and new_dataset_sensor.job_name == inventory_job.name

    result = dg.materialize(
        [raw_videos, ingest, reject_rate_below_threshold],
        partition_key=request.partition_key,
        instance=instance,
        resources={"settings": settings},
        tags=request.tags,
    )
    assert result.success
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
    rejects = read_rows("rejects", ["source_path", "dataset"]).to_pylist()
    assert [(Path(r["source_path"]).name, r["dataset"]) for r in rejects] == [("broken.mp4", "drop_in")]
    assert read_rows("clips", ["clip_id"], "dataset = 'drop_in'").num_rows == 1
