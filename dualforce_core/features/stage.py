"""One stage interface for every feature extractor: read clips, skip what is done, process, upsert.

An extractor is a small object naming its output table, an `extractor_id` (network + weights fingerprint
+ settings) and the `clips` columns it reads. `run_extractor` does the rest the same way for all of
them, so the CLI, a Dagster asset and a test drive identical code. Resuming is by `extractor_id`: a clip
whose row in the output table carries the same id is skipped; a changed network or setting re-extracts.
Each batch is its own `merge_insert`, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
from tqdm import tqdm

from dualforce_core.data.lance_store import existing_ids, in_list, read_rows, sql_str, table_version, upsert
from dualforce_core.data.tables import CLIPS
from dualforce_core.errors import UserError


class Extractor(Protocol):
    table: str
    extractor_id: str
    clip_columns: tuple[str, ...]

    def load(self) -> None:
        """Load the network; called only when there is at least one clip to process."""

    def process(self, clips: pa.Table) -> pa.Table:
        """Output rows for a batch of `clips` rows (may be fewer rows: clips it has no source for)."""


@dataclass(frozen=True)
class ExtractReport:
    table: str
    dataset: str
    extractor_id: str
    total: int  # clips of the dataset
    skipped: int  # already extracted with the same extractor_id
    written: int
    without_source: int  # processed but produced no row (e.g. no FLAME sidecar)
    version: int | None  # output table version after the run (None: never written)
    seconds: float

    @property
    def clips_per_s(self) -> float:
        processed = self.written + self.without_source
        return processed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"{self.table}[{self.dataset}]: {self.written} written, {self.skipped} already done, "
            f"{self.without_source} without source, of {self.total} clips; version {self.version}; "
            f"{self.clips_per_s:.2f} clips/s; extractor {self.extractor_id}"
        )


def run_extractor(
    extractor: Extractor, dataset: str, batch_size: int, progress: bool = True
) -> ExtractReport:
    """Extract every clip of `dataset` not yet done by `extractor.extractor_id`, batch by batch."""
    start = time.perf_counter()
    clip_ids = sorted(existing_ids(CLIPS.name, where=f"dataset = {sql_str(dataset)}"))
    if not clip_ids:
        raise UserError(f"no clips of dataset {dataset!r} in the '{CLIPS.name}' table: ingest it first")
    done = existing_ids(
        extractor.table,
        where=f"dataset = {sql_str(dataset)} AND extractor_id = {sql_str(extractor.extractor_id)}",
    )
    todo = [clip_id for clip_id in clip_ids if clip_id not in done]
    written = 0
    if todo:
        extractor.load()
    columns = list(dict.fromkeys(("clip_id", "dataset", *extractor.clip_columns)))
    with tqdm(total=len(todo), desc=extractor.table, unit="clip", disable=not progress) as bar:
        step = max(1, batch_size)
        for first in range(0, len(todo), step):
            ids = todo[first : first + step]
            clips = read_rows(CLIPS.name, columns, where=in_list("clip_id", ids))
            rows = extractor.process(clips)
            upsert(extractor.table, rows)
            written += rows.num_rows
            bar.update(len(ids))
    return ExtractReport(
        table=extractor.table,
        dataset=dataset,
        extractor_id=extractor.extractor_id,
        total=len(clip_ids),
        skipped=len(clip_ids) - len(todo),
        written=written,
        without_source=len(todo) - written,
        version=table_version(extractor.table),
        seconds=time.perf_counter() - start,
    )
