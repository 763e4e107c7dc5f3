"""Data-quality checks that gate training: each returns the offending clips, empty when all is well.

Given the training set's `versions`, they vet exactly the table versions training will read. Coverage
comes from the same join as the manifest and the training dataset (`clips_with_features`); the tensor
checks read the tables directly, so a failure names the table and clip to re-extract, and stream in
batches so a large dataset is never held in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from dualforce_core.data.clip_features import clips_with_features
from dualforce_core.data.lance_store import open_table, sql_str
from dualforce_core.data.tables import (
    AUDIO_FEATURES,
    CLIPS,
    FEATURES,
    FLAME_PARAMS,
    STRUCT_FEATURES,
    VIDEO_LATENTS,
)
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.features.vae_layout import Z_DIM
from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.motion_layout import MOTION_DIM
from dualforce_core.timeline import AUDIO_TOKENS_PER_FRAME, SPATIAL_STRIDE, latent_frames_of

SCAN_BATCH = 64
Versions = Mapping[str, int] | None  # the training set's pinned versions; None: each table's latest


def _rows(table: str, dataset: str, columns: list[str], versions: Versions) -> Iterator[dict[str, Any]]:
    handle = open_table(table, (versions or {}).get(table))
    if handle is None:
        return
    for batch in handle.to_batches(
        columns=columns, filter=f"dataset = {sql_str(dataset)}", batch_size=SCAN_BATCH
    ):
        yield from batch.to_pylist()


def missing_features(dataset: str, versions: Versions = None) -> dict[str, list[str]]:
    """Required table -> the dataset's clips that have no row in it."""
    return {table: ids for table, ids in clips_with_features(dataset, versions).missing().items() if ids}


def nonfinite_features(dataset: str, versions: Versions = None) -> dict[str, list[str]]:
    """Table -> clips with a NaN or Inf anywhere in a stored tensor."""
    bad: dict[str, list[str]] = {}
    for table in FEATURES:
        columns = ["clip_id", *{c for t in table.tensors for c in (t.blob, t.shape, t.dtype) if c}]
        for row in _rows(table.name, dataset, columns, versions):
            for spec in table.tensors:
                shape = row[spec.shape] if spec.shape else spec.fixed_shape
                tensor = decode_tensor(row[spec.blob], shape, row[spec.dtype] if spec.dtype else "float32")
                if not bool(torch.isfinite(tensor.float()).all()):
                    bad.setdefault(table.name, []).append(row["clip_id"])
                    break
    return bad


ANY = -1  # a dimension the clip does not determine (HuBERT layers and width)


def expected_shapes(num_frames: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """The shape each stored tensor must have for a clip of `num_frames` frames of height x width."""
    h, w = height // SPATIAL_STRIDE, width // SPATIAL_STRIDE
    return {
        VIDEO_LATENTS.name: (Z_DIM, latent_frames_of(num_frames), h, w),
        "ref_latent": (Z_DIM, 1, h, w),
        STRUCT_FEATURES.name: (num_frames, MOTION_DIM),
        FLAME_PARAMS.name: (num_frames, FLAME_DIM),
        AUDIO_FEATURES.name: (AUDIO_TOKENS_PER_FRAME * num_frames, ANY, ANY),
    }


def _matches(shape: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    return len(shape) == len(wanted) and all(w in (ANY, s) for s, w in zip(shape, wanted))


def shape_mismatches(dataset: str, versions: Versions = None) -> list[str]:
    """One line per clip whose feature shapes disagree with its frame count and size (so with each other:
    the audio length and the video length both follow from the clip's frames)."""
    clips = {
        row["clip_id"]: expected_shapes(row["num_frames"], row["height"], row["width"])
        for row in _rows(CLIPS.name, dataset, ["clip_id", "num_frames", "height", "width"], versions)
    }
    problems = []
    for table, key_columns in (
        (VIDEO_LATENTS.name, ((VIDEO_LATENTS.name, "shape"), ("ref_latent", "ref_shape"))),
        (STRUCT_FEATURES.name, ((STRUCT_FEATURES.name, "shape"),)),
        (FLAME_PARAMS.name, ((FLAME_PARAMS.name, "shape"),)),
        (AUDIO_FEATURES.name, ((AUDIO_FEATURES.name, "shape"),)),
    ):
        columns = ["clip_id", *(column for _, column in key_columns)]
        for row in _rows(table, dataset, columns, versions):
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
