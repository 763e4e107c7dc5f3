"""Declarative automation carries a dataset downstream: inventory → clips/rejects → feature tables, no further.

The sensor only takes stock of a folder (`raw_videos`); these tests evaluate the code location's real
automation conditions against a real instance and materialise what they request, one hop at a time.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from graph_fixtures import instance_with_partition, resources, write_dataset

from assets import ALL_ASSETS
from assets.raw_videos import raw_videos
from definitions import defs
from dualforce_core.weights import init_random
from pipelines.jobs import inventory_job
from pipelines.sensors import data_automation_sensor, new_dataset_sensor

FEATURES = {"audio_features", "struct_features", "flame_params", "video_latents"}
ALL_KEYS = [key for a in ALL_ASSETS for key in a.keys]


def _requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, list[str | None]]:
    """{asset: partitions} that one evaluation asked to run."""
    return {
        key.to_user_string(): sorted(result.get_requested_partitions(key), key=str)
        for key in ALL_KEYS
        if result.get_num_requested(key)
    }


def test_the_sensor_takes_stock_and_automation_covers_the_rest_of_the_data_group() -> None:
    assert new_dataset_sensor.job_name == inventory_job.name
    automated = {
        key.to_user_string() for a in ALL_ASSETS for key, c in a.automation_conditions_by_key.items() if c
    }
    assert automated == {"clips", "rejects", *FEATURES}  # training and evaluation stay on the schedule / UI
    assert data_automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert data_automation_sensor in list(defs.sensors or [])


def test_an_inventory_run_pulls_ingestion_and_features_then_settles(dualforce_home: Path) -> None:
    write_dataset(dualforce_home, "auto", clips=1, broken=False)
    init_random(dualforce_home / "weights", seed=0)
    instance = instance_with_partition("auto")
    run_resources = resources(dualforce_home)
    downstream = {name: ["auto"] for name in ("clips", "rejects", *FEATURES)}

    idle = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert idle.total_requested == 0  # nothing upstream yet: nothing to do

    assert dg.materialize(
        [raw_videos], partition_key="auto", instance=instance, resources=run_resources
    ).success
    after_inventory = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=idle.cursor)
    # One plan for the whole hop: clips are requested, so the features may follow in the same run.
    assert _requested(after_inventory) == downstream

    data_assets = [a for a in ALL_ASSETS if "data" in a.group_names_by_key.values() and a is not raw_videos]
    assert dg.materialize(
        [raw_videos, *data_assets],
        partition_key="auto",
        instance=instance,
        resources=run_resources,
        selection=dg.AssetSelection.assets(*(k for k in ALL_KEYS if k.to_user_string() in downstream)),
    ).success
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_inventory.cursor)
    assert settled.total_requested == 0  # each update is acted on once, not on every tick

    assert dg.materialize(
        [raw_videos], partition_key="auto", instance=instance, resources=run_resources
    ).success
    after_new_files = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert _requested(after_new_files) == downstream  # a changed folder is followed downstream again
