"""Arrow schemas and deterministic keys of the tables ingestion writes.

`clips` is read by every feature extractor: its columns are a contract, change them only with them.
`sources` is ingestion's own ledger (one row per source file and config), so a re-run skips finished files.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

CLIPS = pa.schema(
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
    ]
)

REJECTS = pa.schema(
    [
        pa.field("reject_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("time", TIMESTAMP, nullable=False),
    ]
)

SOURCES = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("source_hash", pa.string(), nullable=False),
        pa.field("config_fingerprint", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("clips", pa.int32(), nullable=False),
        pa.field("time", TIMESTAMP, nullable=False),
    ]
)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


def clip_id(dataset: str, source_hash: str, start_frame: int) -> str:
    """Same dataset, content and start frame, same id: a re-run or a copied file updates rows, never adds
    them; the same file in two datasets gives two rows, so ingesting one never takes the other's clips."""
    return _digest(dataset, source_hash, start_frame)


def reject_id(dataset: str, source_path: str, source_hash: str, stage: str) -> str:
    return _digest(dataset, source_path, source_hash, stage)


def source_id(dataset: str, source_hash: str, config_fingerprint: str) -> str:
    return _digest(dataset, source_hash, config_fingerprint)
