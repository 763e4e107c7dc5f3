"""One dataset's clips joined across the feature tables, at fixed Lance versions.

The `training_set` manifest, its blocking checks and the training dataset all start from this one join,
so they agree on which clips train and from which versions. Only key and shape columns are read, and
each row's position in its version is kept: the training dataset fetches items by position (`take`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualforce_core.data.lance_store import open_table, sql_str
from dualforce_core.data.tables import CLIPS, FEATURES, REQUIRED_FEATURES

CLIP_COLUMNS = ["clip_id", "num_frames", "fps", "height", "width"]


@dataclass(frozen=True)
class FeatureRows:
    """One feature table's rows of the dataset, at one version."""

    version: int
    positions: dict[str, int]  # clip_id -> row position in that version
    shapes: dict[str, tuple[int, ...]]  # clip_id -> the stored tensor's `shape`


@dataclass(frozen=True)
class ClipFeatures:
    dataset: str
    clips: dict[str, dict[str, Any]]  # clip_id -> its `clips` row (CLIP_COLUMNS)
    clips_version: int | None  # None: no `clips` table
    tables: dict[str, FeatureRows]  # the feature tables that exist

    @property
    def versions(self) -> dict[str, int]:
        """Table -> the Lance version read, `clips` included."""
        found = {name: rows.version for name, rows in self.tables.items()}
        return found if self.clips_version is None else {CLIPS.name: self.clips_version, **found}

    def ids(self, table: str) -> set[str]:
        rows = self.tables.get(table)
        return set(rows.positions) if rows is not None else set()

    def complete(self) -> set[str]:
        """Clips with a row in every required feature table (with or without a `clips` row)."""
        return set.intersection(*(self.ids(table.name) for table in REQUIRED_FEATURES))

    def usable(self) -> list[str]:
        """The dataset's `clips` rows that every required feature table has."""
        return sorted(set(self.clips) & self.complete())

    def missing(self) -> dict[str, list[str]]:
        """Required table -> the dataset's clips without a row there (every required table listed)."""
        return {table.name: sorted(set(self.clips) - self.ids(table.name)) for table in REQUIRED_FEATURES}


def clips_with_features(
    dataset: str, versions: Mapping[str, int] | None = None, with_clips: bool = True
) -> ClipFeatures:
    """Join `dataset` across `clips` and the feature tables, at `versions` (default: each table's latest).

    `with_clips=False` skips the `clips` table: training needs only the features, and may run on
    feature tables written without ingestion.
    """
    pinned = versions or {}
    clips_table = open_table(CLIPS.name, pinned.get(CLIPS.name)) if with_clips else None
    clips: dict[str, dict[str, Any]] = {}
    if clips_table is not None:
        where = f"dataset = {sql_str(dataset)}"
        clips = {row["clip_id"]: row for row in clips_table.to_table(CLIP_COLUMNS, filter=where).to_pylist()}
    tables: dict[str, FeatureRows] = {}
    for table in FEATURES:
        handle = open_table(table.name, pinned.get(table.name))
        if handle is None:
            continue
        # Every row's small columns: the index in a full scan is the row position `take` wants.
        rows = handle.to_table(columns=["clip_id", "dataset", "shape"]).to_pydict()
        mine = [pos for pos, name in enumerate(rows["dataset"]) if name == dataset]
        tables[table.name] = FeatureRows(
            version=int(handle.version),
            positions={rows["clip_id"][pos]: pos for pos in mine},
            shapes={rows["clip_id"][pos]: tuple(rows["shape"][pos]) for pos in mine},
        )
    version = None if clips_table is None else int(clips_table.version)
    return ClipFeatures(dataset, clips, version, tables)
