"""A tiny dataset and the resources that run the whole asset graph on it in well under a minute."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import init_random
from pipelines.resources import REPO_ROOT, ComputeSettings, DualForceSettings, MlflowSettings

DATASET = "sample"
TINY_OVERRIDES = [
    "data.size=32",
    "data.clip_frames=9",
    "data.clip_stride=8",
    "data.video_preset=ultrafast",
    "train.max_steps=2",
    "train.checkpoint_every=0",
    "eval.split=all",
    "eval.limit=1",
    "eval.samples=0",
    "eval.fvd_clip_frames=9",
]


def write_dataset(home: Path, name: str = DATASET, clips: int = 2, broken: bool = True) -> Path:
    """`clips` synthetic talking-face videos (one 9-frame clip each) plus, optionally, a corrupt mp4."""
    folder = home / "raw" / name
    generate_dataset(folder, clips=clips, seed=0, seconds=0.5, size=64)
    if broken:
        (folder / "videos" / "broken.mp4").write_bytes(b"this is not an mp4 file")
    return folder


def prepare_home(home: Path) -> None:
    write_dataset(home)
    init_random(home / "weights", seed=0)


def resources(home: Path, nproc: int = 1) -> dict[str, object]:
    return {
        "settings": DualForceSettings(
            home=str(home), config_path=str(REPO_ROOT / "configs/train/tiny.yaml"), overrides=TINY_OVERRIDES
        ),
        "compute": ComputeSettings(nproc=nproc),
        "mlflow": MlflowSettings(),
        "pipes_client": dg.PipesSubprocessClient(cwd=str(REPO_ROOT)),
    }


def instance_with_partition(name: str = DATASET) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("datasets", [name])
    return instance


def materialization(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    """{metadata key: value} of the run's materialisation of `key`."""
    events = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(key)
    ]
    assert len(events) == 1, f"{key}: {len(events)} materialisations"
    return {k: v.value for k, v in events[0].metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
