"""The DualForce Dagster code location (`dagster dev -w workspace.yaml`)."""

from __future__ import annotations

import dagster as dg

from assets import ALL_ASSETS
from pipelines.resources import default_resources

defs = dg.Definitions(assets=ALL_ASSETS, resources=default_resources())
