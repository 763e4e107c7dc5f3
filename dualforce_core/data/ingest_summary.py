"""What ingestion left for one dataset across all its runs: clip rows, rejects by reason, reject rate, and
(crop_mode=track) the curation statistics: tracks, cuts, clips, frame ranges rejected, face sizes, and the
SyncNet filter's confidence and offset per curated clip (with a confidence histogram for the Dagster UI)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dualforce_core.data.lance_store import open_table, read_rows, sql_str

CURATE_STAGE = "curate"  # = source_cut.CURATE_STAGE (not imported: that module loads the curation package)
SYNC_BINS = 10
"""Sync-C histogram: bins [0, 1), ..., [9, 10), then >= 10 (LatentSync keeps >= 3; real clips reach ~10)."""


@dataclass(frozen=True)
class IngestSummary:
    dataset: str
    clips: int
    sources_ingested: int
    rejects: dict[str, int]  # reason -> count of rejected files
    segment_rejects: dict[str, int] = field(default_factory=dict)  # crop_mode=track: frame ranges

    @property
    def files_rejected(self) -> int:
        return sum(self.rejects.values())

    @property
    def reject_rate(self) -> float:
        """Rejected files over all files that reached a verdict (0 when none did); a frame range that
        curation refused is not a rejected file."""
        total = self.sources_ingested + self.files_rejected
        return self.files_rejected / total if total else 0.0


@dataclass(frozen=True)
class CurationSummary:
    """Face-track curation of one dataset (crop_mode=track), summed over its curated files."""

    dataset: str
    files: int
    frames: int
    cuts: int
    tracks: int
    clips: int  # curated clips (runs of one clean face), before windowing
    clip_frames: int  # frames inside curated clips
    windows: int  # `clips` rows made from them
    rejects: dict[str, int]  # reason -> frame ranges rejected
    rejected_frames: dict[str, int]  # reason -> frames
    face_px: dict[str, float]  # median / p10 / p90 of the clip rows' face size (source px); {} if none
    sync_filtered_files: int = 0  # files whose curated clips the SyncNet filter scored
    sync: list[dict[str, Any]] = field(default_factory=list)  # per scored clip: confidence, offset, ...

    @property
    def frame_yield(self) -> float:
        """Share of curated frames that ended up inside a clean clip."""
        return self.clip_frames / self.frames if self.frames else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "frames": self.frames,
            "cuts": self.cuts,
            "tracks": self.tracks,
            "clips": self.clips,
            "clip_frames": self.clip_frames,
            "windows": self.windows,
            "frame_yield": round(self.frame_yield, 4),
            "rejects": self.rejects,
            "rejected_frames": self.rejected_frames,
            "face_px": self.face_px,
            "sync_filtered_files": self.sync_filtered_files,
            "sync_verdicts": self.sync_verdicts,
            "sync_offsets": self.sync_offsets,
        }

    @property
    def sync_verdicts(self) -> dict[str, int]:
        """Scored curated clips by verdict: kept, low_sync, av_offset."""
        return dict(sorted(Counter(str(item["verdict"]) for item in self.sync).items()))

    @property
    def sync_offsets(self) -> dict[str, int]:
        """Scored curated clips by audio-video offset in frames (kept clips had their audio shifted by it)."""
        counts = Counter(int(item["offset"]) for item in self.sync)
        return {str(offset): counts[offset] for offset in sorted(counts)}

    def sync_histogram(self) -> list[tuple[str, int, int]]:
        """(Sync-C bin, curated clips scored in it, of which kept), bins of `SYNC_BINS`."""
        labels = [f"[{low}, {low + 1})" for low in range(SYNC_BINS)] + [f">= {SYNC_BINS}"]
        clips, kept = [0] * len(labels), [0] * len(labels)
        for item in self.sync:
            index = min(max(int(item["confidence"]), 0), SYNC_BINS)  # Sync-C = median - min >= 0
            clips[index] += 1
            kept[index] += item["verdict"] == "kept"
        return list(zip(labels, clips, kept, strict=True))

    def sync_histogram_markdown(self) -> str:
        """The Sync-C histogram as a markdown table (the `clips` asset's metadata)."""
        lines = ["| Sync-C | curated clips | kept |", "|---|---:|---:|"]
        lines += [f"| {label} | {clips} | {kept} |" for label, clips, kept in self.sync_histogram()]
        return "\n".join(lines)


def _columns(name: str, wanted: list[str]) -> list[str]:
    """The wanted columns the table has (one written before a column existed lacks it until next write)."""
    table = open_table(name)
    return [] if table is None else [c for c in wanted if c in table.schema.names]


def ingest_summary(dataset: str) -> IngestSummary:
    where = f"dataset = {sql_str(dataset)}"
    clips = read_rows("clips", ["clip_id"], where).num_rows
    sources = read_rows("sources", ["status"], where)
    ingested = (
        sum(1 for s in sources.column("status").to_pylist() if s == "ingested") if sources.num_rows else 0
    )
    rejects = read_rows("rejects", ["reason", "stage"], where)
    files: Counter[str] = Counter()
    segments: Counter[str] = Counter()
    if rejects.num_rows:
        for reason, stage in zip(rejects.column("reason").to_pylist(), rejects.column("stage").to_pylist()):
            (segments if stage == CURATE_STAGE else files)[str(reason)] += 1
    return IngestSummary(
        dataset, clips, ingested, dict(sorted(files.items())), dict(sorted(segments.items()))
    )


def curation_summary(dataset: str) -> CurationSummary | None:
    """None when no file of the dataset was curated (crop_mode other than track)."""
    where = f"dataset = {sql_str(dataset)}"
    if "curation_stats" not in _columns("sources", ["curation_stats"]):
        return None
    latest: dict[str, tuple[object, str]] = {}  # source hash -> its newest curation (settings may change)
    rows = read_rows(
        "sources", ["source_hash", "time", "curation_stats"], f"{where} AND curation_stats IS NOT NULL"
    )
    for row in rows.to_pylist():
        if row["source_hash"] not in latest or row["time"] > latest[row["source_hash"]][0]:
            latest[row["source_hash"]] = (row["time"], row["curation_stats"])
    stats = [json.loads(text) for _, text in latest.values()]
    if not stats:
        return None
    rejected_frames: Counter[str] = Counter()
    for item in stats:
        rejected_frames.update(item["rejected_frames"])
    reasons: Counter[str] = Counter()
    if _columns("rejects", ["stage"]):
        rejects = read_rows("rejects", ["reason"], f"{where} AND stage = {sql_str(CURATE_STAGE)}")
        reasons.update(str(r) for r in rejects.column("reason").to_pylist())
    sizes = np.array([], np.float64)
    if _columns("clips", ["face_px"]):
        column = read_rows("clips", ["face_px"], f"{where} AND face_px IS NOT NULL").column("face_px")
        sizes = np.asarray(column.to_pylist(), np.float64)
    face_px = (
        {
            name: round(float(np.percentile(sizes, q)), 1)
            for name, q in (("median", 50), ("p10", 10), ("p90", 90))
        }
        if len(sizes)
        else {}
    )
    return CurationSummary(
        dataset=dataset,
        files=len(stats),
        frames=sum(int(s["frames"]) for s in stats),
        cuts=sum(int(s["cuts"]) for s in stats),
        tracks=sum(int(s["tracks"]) for s in stats),
        clips=sum(int(s["clips"]) for s in stats),
        clip_frames=sum(int(s["clip_frames"]) for s in stats),
        windows=sum(int(s["windows"]) for s in stats),
        rejects=dict(sorted(reasons.items())),
        rejected_frames=dict(sorted(rejected_frames.items())),
        face_px=face_px,
        sync_filtered_files=sum(bool(s.get("sync_filtered")) for s in stats),
        sync=[item for s in stats for item in s.get("sync", [])],
    )


def face_size_within(summary: CurationSummary | None, low: float, high: float) -> tuple[bool, str]:
    """(passed, why) of the median face-size drift check."""
    if summary is None or not summary.face_px:
        return False, "no curated clip with a face size: nothing to check"
    median = summary.face_px["median"]
    if median < low:
        return False, f"median face {median} px is below data.face_px_median_min={low}"
    if median > high:
        return False, f"median face {median} px is above data.face_px_median_max={high}"
    return True, f"median face {median} px within [{low}, {high}]"
