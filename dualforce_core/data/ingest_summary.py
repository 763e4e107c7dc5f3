"""What ingestion left for one dataset across all its runs: clip rows, rejects by reason, reject rate."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dualforce_core.data.lance_store import read_rows, sql_str


@dataclass(frozen=True)
class IngestSummary:
    dataset: str
    clips: int
    sources_ingested: int
    rejects: dict[str, int]  # reason -> count

    @property
    def files_rejected(self) -> int:
        return sum(self.rejects.values())

    @property
    def reject_rate(self) -> float:
        """Rejected files over all files that reached a verdict (0 when none did)."""
        total = self.sources_ingested + self.files_rejected
        return self.files_rejected / total if total else 0.0


def ingest_summary(dataset: str) -> IngestSummary:
    where = f"dataset = {sql_str(dataset)}"
    clips = read_rows("clips", ["clip_id"], where).num_rows
    sources = read_rows("sources", ["status"], where)
    ingested = (
        sum(1 for s in sources.column("status").to_pylist() if s == "ingested") if sources.num_rows else 0
    )
    rejects = read_rows("rejects", ["reason"], where)
    reasons = Counter(str(r) for r in rejects.column("reason").to_pylist()) if rejects.num_rows else Counter()
    return IngestSummary(dataset, clips, ingested, dict(sorted(reasons.items())))
