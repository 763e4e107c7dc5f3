"""The training set of one dataset as a manifest: which clips training will use and from which versions.

The manifest (`$DUALFORCE_HOME/training_sets/<dataset>.json`) records the Lance version of every table
at the time the pipeline built it; the blocking checks vet those versions and the pipeline's training
run reads exactly them (`--training-set`), so rows appended after the checks never reach the model.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from dualforce_core import paths
from dualforce_core.data.clip_features import clips_with_features
from dualforce_core.data.tables import FLAME_PARAMS, VIDEO_LATENTS
from dualforce_core.errors import UserError


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


def read_training_set(path: Path) -> TrainingSetManifest:
    """A manifest written by `build_training_set`."""
    try:
        return TrainingSetManifest(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"cannot read the training set manifest {path}: {err}") from None


def build_training_set(dataset: str) -> TrainingSetManifest:
    """Join the dataset's clips across the feature tables and write the manifest."""
    join = clips_with_features(dataset)
    usable = join.usable()
    clips = [join.clips[clip_id] for clip_id in usable]
    latent_shapes = join.tables[VIDEO_LATENTS.name].shapes if VIDEO_LATENTS.name in join.tables else {}
    shapes = Counter("x".join(map(str, latent_shapes[clip_id])) for clip_id in usable)
    manifest = TrainingSetManifest(
        dataset=dataset,
        clip_ids=usable,
        missing=join.missing(),
        versions=join.versions,
        with_flame=len(set(usable) & join.ids(FLAME_PARAMS.name)),
        frames=sum(c["num_frames"] for c in clips),
        seconds=round(sum(c["num_frames"] / c["fps"] for c in clips), 3),
        latent_shapes=dict(sorted(shapes.items())),
    )
    path = manifest_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json())
    return manifest
