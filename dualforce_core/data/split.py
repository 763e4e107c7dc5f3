"""Train/test split by identity: no person is seen in training and then scored as "held out".

An identity goes to the test split when a hash of its key, read as a number in [0, 1), is below
`test_fraction`. The hash depends on the key alone, so a clip keeps its split when other clips or
datasets are added, and the trainer and the evaluator agree without sharing any state. With two or
more identities, both splits are kept non-empty: if the hash sends none (or all) of them to test,
the identity with the smallest (largest) hash value moves across.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dualforce_core.data import lance_store
from dualforce_core.data.ingest import DATASET_NAME
from dualforce_core.errors import UserError

SPLITS = ("train", "test", "all")
_COLUMNS = ["clip_id", "source_path", "source_hash", "start_frame", "sidecar_path"]


class SplitSettings(Protocol):
    """The split's settings (`eval.*` in the config): a protocol, so data never imports evaluation."""

    @property
    def identity(self) -> str: ...

    @property
    def identity_folder_depth(self) -> int: ...

    @property
    def test_fraction(self) -> float: ...


@dataclass(frozen=True)
class SplitClip:
    clip_id: str
    identity: str
    source_path: str
    start_frame: int


def identity_hash(identity: str) -> float:
    """The identity key as a uniform number in [0, 1)."""
    digest = hashlib.sha256(identity.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(identities: Iterable[str], test_fraction: float) -> dict[str, str]:
    """identity → "train" | "test", deterministic; both non-empty whenever there are ≥ 2 identities."""
    ranked = sorted(set(identities), key=lambda key: (identity_hash(key), key))
    splits = {key: "test" if identity_hash(key) < test_fraction else "train" for key in ranked}
    if len(ranked) >= 2:
        if "test" not in splits.values():
            splits[ranked[0]] = "test"
        if "train" not in splits.values():
            splits[ranked[-1]] = "train"
    return splits


def _sidecar_identity(path: str | None, cache: dict[str, Any]) -> str | None:
    if not path:
        return None
    if path not in cache:
        try:
            cache[path] = json.loads(Path(path).read_text()).get("identity")
        except (OSError, ValueError, AttributeError):
            cache[path] = None
    value = cache[path]
    return None if value is None else str(value)


def clip_identity(row: dict[str, Any], config: SplitSettings, cache: dict[str, Any]) -> str:
    """The identity key of one `clips` row, namespaced by where it came from."""
    mode = config.identity
    if mode in ("auto", "sidecar"):
        found = _sidecar_identity(row["sidecar_path"], cache)
        if found is not None:
            return f"sidecar:{found}"
        if mode == "sidecar":
            raise UserError(
                f"clip {row['clip_id']} ({row['source_path']}) has no readable sidecar JSON with an `identity`; "
                "use eval.identity=source_file or eval.identity=source_folder"
            )
    if mode == "source_folder":
        parents = Path(row["source_path"]).parents
        depth = config.identity_folder_depth
        if depth > len(parents) - 1:
            raise UserError(
                f"eval.identity_folder_depth={depth} goes above the root for {row['source_path']}"
            )
        return f"folder:{parents[depth - 1].name}"
    return f"file:{row['source_hash']}"


def dataset_clips(dataset: str, config: SplitSettings) -> list[SplitClip]:
    """Every clip of `dataset` with its identity, ordered by clip id (a hash, so `limit` samples broadly)."""
    if not DATASET_NAME.match(dataset):
        raise UserError(f"dataset name {dataset!r} must be letters, digits, '_', '-' or '.'")
    table = lance_store.read_rows("clips", _COLUMNS, f"dataset = '{dataset}'")
    rows = table.to_pylist() if table.num_columns else []
    if not rows:
        raise UserError(
            f"the clips table has no clips of dataset {dataset!r}; "
            f"run `dualforce ingest --dataset {dataset} --src FOLDER` first"
        )
    cache: dict[str, Any] = {}
    clips = [
        SplitClip(row["clip_id"], clip_identity(row, config, cache), row["source_path"], row["start_frame"])
        for row in rows
    ]
    return sorted(clips, key=lambda clip: clip.clip_id)


def select_split(clips: list[SplitClip], split: str, test_fraction: float) -> list[SplitClip]:
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "all":
        return list(clips)
    splits = assign_splits((clip.identity for clip in clips), test_fraction)
    return [clip for clip in clips if splits[clip.identity] == split]


def split_clips(dataset: str, split: str, config: SplitSettings) -> list[str]:
    """Clip ids of `dataset` in `split` ("train", "test" or "all"), identity-disjoint between train and test."""
    clips = dataset_clips(dataset, config)
    return [clip.clip_id for clip in select_split(clips, split, config.test_fraction)]
