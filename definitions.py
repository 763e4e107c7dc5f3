"""The DualForce Dagster code location (`dagster dev -w workspace.yaml`)."""

from __future__ import annotations

import dagster as dg

from assets import ALL_ASSETS
from pipelines.jobs import ALL_JOBS
from pipelines.resources import default_resources
from pipelines.sensors import ALL_SENSORS

defs = dg.Definitions(assets=ALL_ASSETS, jobs=ALL_JOBS, sensors=ALL_SENSORS, resources=default_resources())
