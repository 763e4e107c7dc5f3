"""The training set of one dataset as a manifest: which clips training will use and from which versions.

Training reads the latest version of each feature table; the manifest written here
(`$DUALFORCE_HOME/training_sets/<dataset>.json`) records what that is at the time the pipeline vetted it,
so a checkpoint's data can be traced back to the checked set.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from dualforce_core import paths
from dualforce_core.data.lance_store import read_rows, sql_str, table_version
from dualforce_core.data.training_dataset import OPTIONAL_TABLES, REQUIRED_TABLES


@dataclass(frozen=True)
class TrainingSetManifest:
    dataset: str
    clip_ids: list[str]  # clips present in every required table
    missing: dict[str, list[str]]  # required table -> the dataset's clips without a row there
    versions: dict[str, int]  # table -> Lance version read
    with_flame: int
    frames: int  # video frames over the usable clips
    seconds: float
    latent_shapes: dict[str, int]  # "16x3x4x4" -> clips (the batch buckets)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


def manifest_path(dataset: str) -> Path:
    return paths.home() / "training_sets" / f"{dataset}.json"


def _ids(table: str, dataset: str) -> set[str]:
    rows = read_rows(table, ["clip_id"], f"dataset = {sql_str(dataset)}")
    return {str(v) for v in rows.column("clip_id").to_pylist()} if rows.num_rows else set()


def build_training_set(dataset: str) -> TrainingSetManifest:
    """Join the dataset's clips across the feature tables and write the manifest."""
    where = f"dataset = {sql_str(dataset)}"
    clips = read_rows("clips", ["clip_id", "num_frames", "fps"], where).to_pylist()
    present = {table: _ids(table, dataset) for table in (*REQUIRED_TABLES, *OPTIONAL_TABLES)}
    usable = sorted(c["clip_id"] for c in clips if all(c["clip_id"] in present[t] for t in REQUIRED_TABLES))
    chosen = set(usable)
    latents = read_rows("video_latents", ["clip_id", "shape"], where).to_pylist()
    shapes = Counter("x".join(map(str, r["shape"])) for r in latents if r["clip_id"] in chosen)
    versions = {
        t: v for t in ("clips", *REQUIRED_TABLES, *OPTIONAL_TABLES) if (v := table_version(t)) is not None
    }
    manifest = TrainingSetManifest(
        dataset=dataset,
        clip_ids=usable,
        missing={
            t: sorted(c["clip_id"] for c in clips if c["clip_id"] not in present[t]) for t in REQUIRED_TABLES
        },
        versions=versions,
        with_flame=len(chosen & present["flame_params"]),
        frames=sum(c["num_frames"] for c in clips if c["clip_id"] in chosen),
        seconds=round(sum(c["num_frames"] / c["fps"] for c in clips if c["clip_id"] in chosen), 3),
        latent_shapes=dict(sorted(shapes.items())),
    )
    path = manifest_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json())
    return manifest
