"""One job per stage group, so the UI, the sensor and the schedule each launch exactly what they need."""

from __future__ import annotations

import dagster as dg

data_job = dg.define_asset_job(
    "data_job",
    selection=dg.AssetSelection.groups("data"),
    description="raw videos → clips → features, for one dataset partition",
)

ALL_JOBS = [data_job]
