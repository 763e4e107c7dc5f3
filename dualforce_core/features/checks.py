"""Data-quality checks that gate training: each returns the offending clips, empty when all is well.

They read the feature tables directly (not the training loader) so a failure names the table and clip
to re-extract, and they stream in batches so a large dataset is never held in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from dualforce_core.data.lance_store import open_table, read_rows, sql_str
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.data.training_dataset import REQUIRED_TABLES
from dualforce_core.features.liveportrait import MOTION_DIM, NUM_KP
from dualforce_core.features.vae_layout import Z_DIM
from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.timeline import AUDIO_TOKENS_PER_FRAME, SPATIAL_STRIDE, latent_frames_of

SCAN_BATCH = 64


@dataclass(frozen=True)
class TensorColumn:
    blob: str
    shape: str | None  # column holding the shape; None: fixed shape below
    dtype: str | None  # column holding the dtype name; None: float32
    fixed_shape: tuple[int, ...] = ()


TENSOR_COLUMNS: dict[str, tuple[TensorColumn, ...]] = {
    "audio_features": (TensorColumn("features", "shape", "dtype"),),
    "struct_features": (
        TensorColumn("motion", "shape", None),
        TensorColumn("canonical_kp", None, None, (NUM_KP, 3)),
    ),
    "flame_params": (TensorColumn("params", "shape", None),),
    "video_latents": (
        TensorColumn("latents", "shape", "dtype"),
        TensorColumn("ref_latent", "ref_shape", "dtype"),
    ),
}


def _rows(table: str, dataset: str, columns: list[str]) -> Iterator[dict[str, Any]]:
    handle = open_table(table)
    if handle is None:
        return
    for batch in handle.to_batches(
        columns=columns, filter=f"dataset = {sql_str(dataset)}", batch_size=SCAN_BATCH
    ):
        yield from batch.to_pylist()


def missing_features(dataset: str) -> dict[str, list[str]]:
    """Required table -> the dataset's clips that have no row in it."""
    clips = set(
        read_rows("clips", ["clip_id"], f"dataset = {sql_str(dataset)}").column("clip_id").to_pylist()
    )
    missing = {}
    for table in REQUIRED_TABLES:
        have = {row["clip_id"] for row in _rows(table, dataset, ["clip_id"])}
        if clips - have:
            missing[table] = sorted(clips - have)
    return missing


def nonfinite_features(dataset: str) -> dict[str, list[str]]:
    """Table -> clips with a NaN or Inf anywhere in a stored tensor."""
    bad: dict[str, list[str]] = {}
    for table, tensors in TENSOR_COLUMNS.items():
        columns = ["clip_id", *{c for t in tensors for c in (t.blob, t.shape, t.dtype) if c}]
        for row in _rows(table, dataset, columns):
            for spec in tensors:
                shape = row[spec.shape] if spec.shape else spec.fixed_shape
                tensor = decode_tensor(row[spec.blob], shape, row[spec.dtype] if spec.dtype else "float32")
                if not bool(torch.isfinite(tensor.float()).all()):
                    bad.setdefault(table, []).append(row["clip_id"])
                    break
    return bad


ANY = -1  # a dimension the clip does not determine (HuBERT layers and width)


def expected_shapes(num_frames: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """The shape each stored tensor must have for a clip of `num_frames` frames of height x width."""
    h, w = height // SPATIAL_STRIDE, width // SPATIAL_STRIDE
    return {
        "video_latents": (Z_DIM, latent_frames_of(num_frames), h, w),
        "ref_latent": (Z_DIM, 1, h, w),
        "struct_features": (num_frames, MOTION_DIM),
        "flame_params": (num_frames, FLAME_DIM),
        "audio_features": (AUDIO_TOKENS_PER_FRAME * num_frames, ANY, ANY),
    }


def _matches(shape: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    return len(shape) == len(wanted) and all(w in (ANY, s) for s, w in zip(shape, wanted))


def shape_mismatches(dataset: str) -> list[str]:
    """One line per clip whose feature shapes disagree with its frame count and size (so with each other:
    the audio length and the video length both follow from the clip's frames)."""
    clips = {
        row["clip_id"]: expected_shapes(row["num_frames"], row["height"], row["width"])
        for row in _rows("clips", dataset, ["clip_id", "num_frames", "height", "width"])
    }
    problems = []
    for table, key_columns in (
        ("video_latents", (("video_latents", "shape"), ("ref_latent", "ref_shape"))),
        ("struct_features", (("struct_features", "shape"),)),
        ("flame_params", (("flame_params", "shape"),)),
        ("audio_features", (("audio_features", "shape"),)),
    ):
        columns = ["clip_id", *(column for _, column in key_columns)]
        for row in _rows(table, dataset, columns):
            wanted = clips.get(row["clip_id"])
            if wanted is None:
                problems.append(f"{table}: {row['clip_id']} has no clip row")
                continue
            for name, column in key_columns:
                got = tuple(row[column])
                if not _matches(got, wanted[name]):
                    problems.append(
                        f"{table}: {row['clip_id']} {column} {list(got)}, expected {list(wanted[name])}"
                    )
    return problems
