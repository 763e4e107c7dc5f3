"""One job per stage group, so the UI, the sensor and the schedule each launch exactly what they need."""

from __future__ import annotations

import dagster as dg

inventory_job = dg.define_asset_job(
    "inventory_job",
    selection=dg.AssetSelection.assets("raw_videos"),
    description="take stock of one dataset folder; clips and features follow it by declarative automation",
)
data_job = dg.define_asset_job(
    "data_job",
    selection=dg.AssetSelection.groups("data"),
    description="raw videos → clips → features, for one dataset partition, in one run (the UI, backfills)",
)
train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.groups("training"),
    description="training set (blocking checks) → DualForce checkpoint, on the latest feature versions",
)
eval_job = dg.define_asset_job(
    "eval_job",
    selection=dg.AssetSelection.groups("evaluation"),
    description="score the latest checkpoint of a dataset on its held-out clips",
)

lora_job = dg.define_asset_job(
    "lora_job",
    selection=dg.AssetSelection.groups("lora"),
    description="fine-tune a LoRA adapter on a dataset over a base checkpoint (run config: base_checkpoint)",
)

ALL_JOBS = [inventory_job, data_job, train_job, eval_job, lora_job]
