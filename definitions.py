"""The DualForce Dagster code location (`dagster dev -w workspace.yaml`)."""

from __future__ import annotations

import dagster as dg

from assets import ALL_ASSETS, ALL_CHECKS, LORA_ASSETS
from pipelines.jobs import ALL_JOBS
from pipelines.resources import default_resources
from pipelines.schedules import ALL_SCHEDULES
from pipelines.sensors import ALL_SENSORS

defs = dg.Definitions(
    assets=[*ALL_ASSETS, *LORA_ASSETS],
    asset_checks=ALL_CHECKS,
    jobs=ALL_JOBS,
    schedules=ALL_SCHEDULES,
    sensors=ALL_SENSORS,
    resources=default_resources(),
)
