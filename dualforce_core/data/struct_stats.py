"""Per-dimension statistics of a dataset's `struct_features`, which normalise the motion for training and
inference. Written by `dualforce extract struct`, read by the training set; they live in `data` because
they describe a table, so reading them never loads the LivePortrait network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dualforce_core import paths
from dualforce_core.data.lance_store import read_rows, sql_str, table_version
from dualforce_core.data.tables import STRUCT_FEATURES
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.motion_layout import MOTION_DIM, MOTION_LAYOUT

STD_FLOOR = 1e-6  # a constant dimension must not make normalisation divide by zero


@dataclass(frozen=True)
class StructStats:
    """Per-dimension mean/std of the 70-vector over every frame of a dataset."""

    dataset: str
    mean: np.ndarray  # [70]
    std: np.ndarray  # [70], at least STD_FLOOR
    num_clips: int
    num_frames: int
    table_version: int | None


def stats_path(dataset: str) -> Path:
    return paths.home() / "stats" / f"{dataset}.json"


def compute_struct_stats(dataset: str) -> StructStats:
    """Statistics over the dataset's `struct_features` rows, written to `$DUALFORCE_HOME/stats/<dataset>.json`."""
    rows = read_rows(STRUCT_FEATURES.name, ["motion", "shape"], where=f"dataset = {sql_str(dataset)}")
    if rows.num_rows == 0:
        raise UserError(
            f"no struct_features rows for dataset {dataset!r}: run `dualforce extract struct` first"
        )
    motion = torch.cat(
        [
            decode_tensor(b, s, "float32")
            for b, s in zip(rows["motion"].to_pylist(), rows["shape"].to_pylist())
        ]
    ).double()
    stats = StructStats(
        dataset=dataset,
        mean=motion.mean(0).numpy(),
        std=motion.std(0, correction=0).clamp_min(STD_FLOOR).numpy(),
        num_clips=rows.num_rows,
        num_frames=motion.shape[0],
        table_version=table_version(STRUCT_FEATURES.name),
    )
    path = stats_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "dataset": dataset,
        "layout": list(MOTION_LAYOUT),
        "mean": stats.mean.tolist(),
        "std": stats.std.tolist(),
        "num_clips": stats.num_clips,
        "num_frames": stats.num_frames,
        "struct_features_version": stats.table_version,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    return stats


def load_struct_stats(dataset: str) -> StructStats:
    """The statistics `extract struct` wrote for `dataset`."""
    path = stats_path(dataset)
    if not path.is_file():
        raise UserError(
            f"no structure statistics for dataset {dataset!r} at {path}: run `dualforce extract struct`"
        )
    record = json.loads(path.read_text())
    mean, std = np.asarray(record["mean"], np.float64), np.asarray(record["std"], np.float64)
    if mean.shape != (MOTION_DIM,) or std.shape != (MOTION_DIM,):
        raise UserError(f"{path} holds {mean.shape[0]} means / {std.shape[0]} stds, expected {MOTION_DIM}")
    return StructStats(
        dataset, mean, std, record["num_clips"], record["num_frames"], record["struct_features_version"]
    )
