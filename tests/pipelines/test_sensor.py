from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from pipelines.resources import DualForceSettings
from pipelines.sensors import MAX_RUNS_PER_TICK, new_dataset_sensor


def _tick(instance: dg.DagsterInstance, home: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"settings": DualForceSettings(home=str(home))}
    )
    result = new_dataset_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_new_folder_adds_partition_and_requests_a_run_once(dualforce_home: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    folder = dualforce_home / "raw" / "speakers_a"
    folder.mkdir(parents=True)
    (folder / "one.mp4").write_bytes(b"\x00" * 10)

    first = _tick(instance, dualforce_home, None)
    assert [r.partition_key for r in first.run_requests or []] == ["speakers_a"]
    assert instance.get_dynamic_partitions("datasets") == ["speakers_a"]

    second = _tick(instance, dualforce_home, first.cursor)
    assert not second.run_requests

    (folder / "two.mp4").write_bytes(b"\x00" * 20)
    third = _tick(instance, dualforce_home, second.cursor)
    assert [r.partition_key for r in third.run_requests or []] == ["speakers_a"]
    assert not third.dynamic_partitions_requests  # known partition: incremental run only


def test_empty_and_hidden_folders_are_ignored(dualforce_home: Path) -> None:
    (dualforce_home / "raw" / "empty").mkdir(parents=True)
    (dualforce_home / "raw" / ".cache").mkdir()
    (dualforce_home / "raw" / ".cache" / "x.mp4").write_bytes(b"x")
    result = _tick(dg.DagsterInstance.ephemeral(), dualforce_home, None)
    assert not result.run_requests


def test_large_backfill_is_spread_over_ticks(dualforce_home: Path) -> None:
    total = MAX_RUNS_PER_TICK + 3
    for index in range(total):
        folder = dualforce_home / "raw" / f"ds{index:02d}"
        folder.mkdir(parents=True)
        (folder / "a.mp4").write_bytes(b"x")
    instance = dg.DagsterInstance.ephemeral()
    first = _tick(instance, dualforce_home, None)
    assert len(first.run_requests or []) == MAX_RUNS_PER_TICK
    second = _tick(instance, dualforce_home, first.cursor)
    assert len(second.run_requests or []) == 3
    assert len(json.loads(second.cursor or "{}")) == total
    assert len(instance.get_dynamic_partitions("datasets")) == total
