"""The sensors: new dataset folders, and the declarative automation that carries data downstream.

A folder under `$DUALFORCE_HOME/raw/` is a dataset partition. A new folder adds a partition and requests an
inventory run (`raw_videos`); new or changed files in a known folder request another one. Everything after
that follows by declarative automation: `clips`/`rejects` and the feature tables carry
`AutomationCondition.eager()`, and `data_automation_sensor` evaluates them, so an updated inventory
re-ingests the partition (ingestion skips what it already has) and new clips refresh the features. Training
is not automated: it runs from the schedule or the UI. At most `MAX_RUNS_PER_TICK` datasets are requested per
tick, so a large backfill is spread over ticks instead of flooding the run queue.
"""

from __future__ import annotations

import json

import dagster as dg

from dualforce_core.data.raw_inventory import scan_raw_folder
from pipelines.jobs import inventory_job
from pipelines.partitions import datasets_partitions
from pipelines.resources import DualForceSettings

MAX_RUNS_PER_TICK = 8


@dg.sensor(job=inventory_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def new_dataset_sensor(context: dg.SensorEvaluationContext, settings: DualForceSettings) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    raw = settings.data_root() / "raw"
    extensions = settings.config().data.extensions
    folders = (
        sorted(p for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")) if raw.is_dir() else []
    )

    known = set(context.instance.get_dynamic_partitions(datasets_partitions.name or "datasets"))
    new_partitions: list[str] = []
    requests: list[dg.RunRequest] = []
    for folder in folders:
        if len(requests) >= MAX_RUNS_PER_TICK:
            break
        fingerprint = scan_raw_folder(folder, extensions).fingerprint()
        if fingerprint == "empty" or seen.get(folder.name) == fingerprint:
            continue
        if folder.name not in known:
            new_partitions.append(folder.name)
        requests.append(dg.RunRequest(run_key=f"{folder.name}:{fingerprint}", partition_key=folder.name))
        seen[folder.name] = fingerprint

    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[datasets_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=json.dumps(seen, sort_keys=True),
    )


data_automation_sensor = dg.AutomationConditionSensorDefinition(
    "data_automation_sensor",
    target=dg.AssetSelection.groups("data"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="runs clips/rejects and the feature tables of a partition when their upstream changes",
)

ALL_SENSORS = [new_dataset_sensor, data_automation_sensor]
