"""The Lance tables as one contract: each table's name, key column, Arrow schema, tensor columns and the
command that fills it, plus the deterministic keys ingestion writes.

`clips` is read by every feature extractor and the feature tables by training and its checks: writers
build rows with `Table.rows` (so a column's type is declared once, here) and readers take names and
tensor columns from here, so a change to a table is a change to this file and its writer.
`sources` is ingestion's own ledger (one row per source file and config), so a re-run skips finished files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from dualforce_core.motion_layout import NUM_KP

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TensorColumn:
    """A tensor stored as bytes (`tensor_codec`), with the columns that say how to decode it."""

    blob: str
    shape: str | None  # column holding the shape; None: fixed shape below
    dtype: str | None  # column holding the dtype name; None: float32
    fixed_shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    key: str  # the `merge_insert` key: a re-run updates rows instead of adding them
    schema: pa.Schema
    filled_by: str  # the command that writes it, for error messages
    tensors: tuple[TensorColumn, ...] = ()

    def rows(self, columns: Mapping[str, Sequence[object]]) -> pa.Table:
        """`columns` as a table of this schema (a missing or mistyped column fails here, not in Lance)."""
        return pa.Table.from_pydict(dict(columns), schema=self.schema)


def _feature_schema(*fields: pa.Field) -> pa.Schema:
    """Every feature table: keyed by clip, filtered by dataset, resumed by extractor id."""
    return pa.schema(
        [
            pa.field("clip_id", pa.string()),
            pa.field("dataset", pa.string()),
            pa.field("extractor_id", pa.string()),
            *fields,
        ]
    )


_SHAPE = pa.list_(pa.int32())
EMBEDDING_DIM = 128

CLIPS = Table(
    "clips",
    "clip_id",
    pa.schema(
        [
            pa.field("clip_id", pa.string(), nullable=False),
            pa.field("dataset", pa.string(), nullable=False),
            pa.field("source_path", pa.string(), nullable=False),
            pa.field("source_hash", pa.string(), nullable=False),
            pa.field("start_frame", pa.int32(), nullable=False),
            pa.field("num_frames", pa.int32(), nullable=False),
            pa.field("start_s", pa.float64(), nullable=False),
            pa.field("end_s", pa.float64(), nullable=False),
            pa.field("fps", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("width", pa.int32(), nullable=False),
            pa.field("video", pa.binary(), nullable=False),
            pa.field("audio", pa.binary(), nullable=False),
            pa.field("audio_sample_rate", pa.int32(), nullable=False),
            pa.field("face_box", pa.list_(pa.float32()), nullable=False),
            pa.field("sidecar_path", pa.string(), nullable=True),
            pa.field("ingested_at", TIMESTAMP, nullable=False),
            # crop_mode=track only (null otherwise): the face track and its aligned-crop geometry.
            pa.field("track_id", pa.int32(), nullable=True),
            pa.field("face_px", pa.float32(), nullable=True),  # median landmark extent, source pixels
            pa.field("identity_embedding", pa.large_binary(), nullable=True),  # float32 [128], dlib
            pa.field("landmarks", pa.large_binary(), nullable=True),  # float32 [T, 68, 2], crop pixels
            pa.field("landmarks_shape", _SHAPE, nullable=True),
            pa.field("affines", pa.large_binary(), nullable=True),  # float32 [T, 2, 3], source -> crop
            pa.field("affines_shape", _SHAPE, nullable=True),
        ]
    ),
    "dualforce ingest",
    (
        TensorColumn("identity_embedding", None, None, (EMBEDDING_DIM,)),
        TensorColumn("landmarks", "landmarks_shape", None),
        TensorColumn("affines", "affines_shape", None),
    ),
)
"""`clips`: one row per fixed window. Columns added after the first release are nullable, and
`ingest.add_missing_columns` adds them to a table written before they existed."""

REJECTS = Table(
    "rejects",
    "reject_id",
    pa.schema(
        [
            pa.field("reject_id", pa.string(), nullable=False),
            pa.field("dataset", pa.string(), nullable=False),
            pa.field("source_path", pa.string(), nullable=False),
            pa.field("stage", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("detail", pa.string(), nullable=False),
            pa.field("time", TIMESTAMP, nullable=False),
            # The measured value behind the decision (face px, frames, seconds, ...); null when there is none.
            pa.field("value", pa.float64(), nullable=True),
        ]
    ),
    "dualforce ingest",
)

SOURCES = Table(
    "sources",
    "source_id",
    pa.schema(
        [
            pa.field("source_id", pa.string(), nullable=False),
            pa.field("dataset", pa.string(), nullable=False),
            pa.field("source_path", pa.string(), nullable=False),
            pa.field("source_hash", pa.string(), nullable=False),
            pa.field("config_fingerprint", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("clips", pa.int32(), nullable=False),
            pa.field("time", TIMESTAMP, nullable=False),
            # crop_mode=track: the file's curation statistics as JSON (frames, cuts, tracks, ...); else null.
            pa.field("curation_stats", pa.string(), nullable=True),
        ]
    ),
    "dualforce ingest",
)

AUDIO_FEATURES = Table(
    "audio_features",
    "clip_id",
    _feature_schema(
        pa.field("features", pa.large_binary()),
        pa.field("shape", _SHAPE),
        pa.field("dtype", pa.string()),
        pa.field("num_layers", pa.int32()),
        pa.field("dim", pa.int32()),
    ),
    "dualforce extract audio",
    (TensorColumn("features", "shape", "dtype"),),
)

STRUCT_FEATURES = Table(
    "struct_features",
    "clip_id",
    _feature_schema(
        pa.field("motion", pa.large_binary()),
        pa.field("shape", _SHAPE),
        pa.field("canonical_kp", pa.large_binary()),
    ),
    "dualforce extract struct",
    (TensorColumn("motion", "shape", None), TensorColumn("canonical_kp", None, None, (NUM_KP, 3))),
)

FLAME_PARAMS = Table(
    "flame_params",
    "clip_id",
    _feature_schema(pa.field("params", pa.large_binary()), pa.field("shape", _SHAPE)),
    "dualforce extract flame",
    (TensorColumn("params", "shape", None),),
)

VIDEO_LATENTS = Table(
    "video_latents",
    "clip_id",
    _feature_schema(
        pa.field("latents", pa.large_binary()),
        pa.field("shape", _SHAPE),
        pa.field("dtype", pa.string()),
        pa.field("ref_latent", pa.large_binary()),
        pa.field("ref_shape", _SHAPE),
    ),
    "dualforce extract latents",
    (TensorColumn("latents", "shape", "dtype"), TensorColumn("ref_latent", "ref_shape", "dtype")),
)

# What training joins: a clip is used when every required table has it; FLAME is optional.
REQUIRED_FEATURES = (VIDEO_LATENTS, STRUCT_FEATURES, AUDIO_FEATURES)
OPTIONAL_FEATURES = (FLAME_PARAMS,)
FEATURES = (*REQUIRED_FEATURES, *OPTIONAL_FEATURES)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


def clip_id(dataset: str, source_hash: str, start_frame: int, track_id: int | None = None) -> str:
    """Same dataset, content and start frame, same id: a re-run or a copied file updates rows, never adds
    them; the same file in two datasets gives two rows, so ingesting one never takes the other's clips.
    crop_mode=track adds the face track (two faces could start a window on the same frame)."""
    if track_id is None:
        return _digest(dataset, source_hash, start_frame)
    return _digest(dataset, source_hash, start_frame, f"track{track_id}")


def reject_id(dataset: str, source_path: str, source_hash: str, stage: str, segment: str = "") -> str:
    """One id per file and stage; a curation reject adds its `segment` (frames, reason, track)."""
    if not segment:
        return _digest(dataset, source_path, source_hash, stage)
    return _digest(dataset, source_path, source_hash, stage, segment)


def source_id(dataset: str, source_hash: str, config_fingerprint: str) -> str:
    return _digest(dataset, source_hash, config_fingerprint)
