"""Raw video folder → `clips` rows, with every unusable file quarantined in `rejects`.

The run: discovery, hashing, skip decisions, batches of Lance writes and the report. Each source is cut
into clip rows by `source_cut` (in this process or a worker); a bad file becomes exactly one `rejects` row
and the run goes on: expected failures carry a short reason code, anything unexpected becomes
`internal_error` (traceback logged at debug level).

Re-runs are cheap and add nothing: the `sources` ledger records each (content hash, config fingerprint)
that finished, so those files are skipped; clip and reject ids are deterministic, so rewrites update rows.
A file cut again under a changed config (codec, size, stride, ...) replaces its earlier cut: clip ids do not
name the config, so the batch deletes the feature rows of its earlier clips (extraction redoes them) and the
earlier clips the new config no longer makes; the report counts both.

Rows are committed in batches: every `commit_every` source files or `write_batch_mb` of clips, whichever
comes first, and at the end (also on Ctrl-C). Each batch writes clips, then rejects, then the ledger, so a
run killed outright (SIGKILL, OOM, power) loses at most the batch it was filling: the next run skips every
committed file and redoes the rest, overwriting by id whatever of an unfinished batch had reached a table.

With `workers` > 1 the cutting of sources runs in that many spawned processes (`ingest_pool.Cutter`, given
`source_cut.cut_source` and `source_cut.load_finder`); hashing, skip decisions, results in file order and
every Lance read and write stay in the parent, so the rows, batches and progress lines are those of a
single-process run.

`crop_mode=track` (face-track curation and the SyncNet filter, see `source_cut`): each curation reject is a
`rejects` row of stage `curate` with its measured value, and the file's curation statistics go into its
`sources` row. The filter runs only with the real SyncNet weights (`sync_filter_weights`); without them it
is skipped, with one warning per run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from dualforce_core.curation import curation_fingerprint
from dualforce_core.data import lance_store, tables
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest_pool import Cut, Cutter, Handle, Job, internal
from dualforce_core.data.media import MediaError
from dualforce_core.data.source_cut import CURATE_STAGE, Finder, SourceIngest, cut_source, load_finder
from dualforce_core.errors import UserError
from dualforce_core.timeline import FPS, SAMPLE_RATE
from dualforce_core.weights.registry import WeightsRegistry

log = logging.getLogger(__name__)

INGEST_VERSION = 1
"""Part of the config fingerprint: bump it when a code change alters the clips made from the same file."""

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FINGERPRINT_FIELDS = (
    "fps",
    "clip_frames",
    "clip_stride",
    "size",
    "crop_mode",
    "detector_path",
    "face_samples",
    "face_scale",
    "max_resolution",
    "max_duration_s",
    "vfr_policy",
    "audio_sample_rate",
    "video_codec",
    "video_crf",
    "video_preset",
)
METADATA_SUFFIXES = {".json"}
RETRYABLE = {"vanished", "unreadable", "internal_error"}
"""Reasons that may not hold next time, so the file is not recorded as finished."""

SYNC_MIN_FRAMES = 6
"""Frames a window needs for one SyncNet window (= metrics.syncnet.WINDOW_FRAMES + 1; not imported: torch)."""


@dataclass
class IngestReport:
    dataset: str
    files_seen: int = 0
    files_ingested: int = 0
    files_skipped: int = 0
    clips_written: int = 0
    clips_recut: int = 0  # earlier clips of files cut again under a changed config (their features deleted)
    clips_dropped: int = 0  # ... of those, the ones the new config no longer makes (deleted from `clips`)
    frames_decoded: int = 0
    seconds: float = 0.0
    rejects: Counter[str] = field(default_factory=Counter)
    segments_rejected: Counter[str] = field(default_factory=Counter)  # crop_mode=track: frame ranges
    curation_cpu_s: float = 0.0  # crop_mode=track: CPU seconds of curating + cropping, all workers
    sync_filter: str = ""  # crop_mode=track: whether the SyncNet filter ran, and why not
    versions: dict[str, int | None] = field(default_factory=dict)
    workers: int = 1
    commit_every: int = 0
    batches_committed: int = 0
    commit_seconds: float = 0.0

    @property
    def files_rejected(self) -> int:
        return sum(self.rejects.values())

    @property
    def frames_per_s(self) -> float:
        return self.frames_decoded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(self.rejects.items())) or "none"
        versions = ", ".join(f"{name} v{version}" for name, version in self.versions.items())
        return (
            f"dataset {self.dataset}: {self.files_seen} files seen, {self.files_ingested} ingested, "
            f"{self.files_skipped} unchanged since an earlier run (skipped), {self.files_rejected} rejected\n"
            f"clips written: {self.clips_written}; source frames decoded: {self.frames_decoded} in "
            f"{self.seconds:.1f}s ({self.frames_per_s:.1f} frames/s, {self.workers} "
            f"worker{'s' if self.workers != 1 else ''})\n"
            f"batches committed: {self.batches_committed} (every {self.commit_every} files or "
            f"data.write_batch_mb; {self.commit_seconds:.1f}s writing)\n"
            f"rejects by reason: {reasons}\n"
            + (
                "curation rejects (frame ranges) by reason: "
                + ", ".join(f"{reason}={count}" for reason, count in sorted(self.segments_rejected.items()))
                + f"; curation and aligned crops {self.curation_cpu_s:.1f} CPU s\n"
                if self.segments_rejected or self.curation_cpu_s
                else ""
            )
            + (f"sync filter: {self.sync_filter}\n" if self.sync_filter else "")
            + (
                f"re-cut under a changed config: {self.clips_recut} earlier clips replaced (their features "
                f"deleted, extraction redoes them), {self.clips_dropped} no longer made (deleted)\n"
                if self.clips_recut
                else ""
            )
            + f"lance tables: {versions}"
        )


def config_fingerprint(config: DataConfig, syncnet: Path | None = None) -> str:
    """Hash of every setting that changes the clips cut from a file (and of the detector file itself);
    crop_mode=track: the curation settings (the sync filter's among them) and the SyncNet file the filter
    runs with (`syncnet`; None: it does not run), so adding the real weights re-ingests."""
    settings: dict[str, Any] = {name: getattr(config, name) for name in FINGERPRINT_FIELDS}
    settings["ingest_version"] = INGEST_VERSION
    if config.crop_mode == "detector" and config.detector_path and Path(config.detector_path).is_file():
        settings["detector_sha256"] = file_sha256(Path(config.detector_path))
    if config.crop_mode == "track":
        settings["curation"] = curation_fingerprint(config.curation)
        settings["syncnet_sha256"] = file_sha256(syncnet) if syncnet is not None else None
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def discover(src: Path, config: DataConfig) -> tuple[list[Path], list[Path]]:
    """(candidate videos, other files) under `src`, sorted. JSON files (sidecars, manifests) are metadata,
    neither; hidden entries are ignored. A directory with a video extension is a candidate (it is rejected
    as unreadable) rather than a folder to descend into.
    """
    extensions = {ext.lower() for ext in config.extensions}
    videos: list[Path] = []
    others: list[Path] = []
    for root, dirs, files in os.walk(src):
        here = Path(root)
        videos.extend(here / name for name in dirs if Path(name).suffix.lower() in extensions)
        dirs[:] = [d for d in dirs if not d.startswith(".") and Path(d).suffix.lower() not in extensions]
        for name in files:
            suffix = Path(name).suffix.lower()
            if name.startswith(".") or suffix in METADATA_SUFFIXES:
                continue
            (videos if suffix in extensions else others).append(here / name)
    return sorted(videos), sorted(others)


def _check_readable(path: Path) -> None:
    if not os.path.lexists(path):
        raise MediaError("vanished", "file was listed but no longer exists")
    if path.is_symlink() and not path.exists():
        raise MediaError("unreadable", f"broken symbolic link to {os.readlink(path)}")
    if path.is_dir():
        raise MediaError("unreadable", "a directory, not a file")
    if not os.access(path, os.R_OK):
        raise MediaError("unreadable", "no read permission")
    if path.stat().st_size == 0:
        raise MediaError("zero_bytes", "file is empty")


def _hash_source(path: Path) -> str:
    try:
        return file_sha256(path)
    except FileNotFoundError:
        raise MediaError("vanished", "file disappeared while hashing") from None
    except OSError as err:
        raise MediaError("unreadable", f"cannot read: {err}") from None


def add_missing_columns(table: tables.Table) -> list[str]:
    """Schema evolution: a table written before a nullable column joined its contract (`tables.py`) gets
    that column, all null, once (Lance `add_columns` with fields: metadata only, no data rewritten), so
    `lance_store.upsert` (which writes the table's own schema) keeps the new values. A missing column that
    may not be null cannot be added that way: one error says what to do. Returns the columns added."""
    dataset = lance_store.open_table(table.name)
    if dataset is None:
        return []
    missing = [field for field in table.schema if field.name not in dataset.schema.names]
    if not missing:
        return []
    required = [field.name for field in missing if not field.nullable]
    if required:
        raise UserError(
            f"table {table.name!r} predates the non-null column(s) {', '.join(required)}: move "
            f"{dataset.uri} aside and run `{table.filled_by}` again"
        )
    try:
        dataset.add_columns(missing)
    except Exception:  # another writer added them first (a commit conflict): fine when they are there
        reopened = lance_store.open_table(table.name)
        if reopened is None or any(field.name not in reopened.schema.names for field in missing):
            raise
    names = [field.name for field in missing]
    log.info("table %s: added column(s) %s, null in its earlier rows", table.name, ", ".join(names))
    return names


class _Batch:
    """Rows waiting for the next Lance commit."""

    def __init__(self, dataset: str, fingerprint: str, flush_bytes: int) -> None:
        for table in (tables.CLIPS, tables.REJECTS, tables.SOURCES):
            add_missing_columns(table)
        self.dataset = dataset
        self.fingerprint = fingerprint
        self.flush_bytes = flush_bytes
        self.clips: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self.sources: list[dict[str, Any]] = []
        self.files = 0
        self.known_rejects = {
            (row["reject_id"], row["reason"])
            for row in lance_store.read_rows(
                tables.REJECTS.name, ["reject_id", "reason"], f"dataset = '{dataset}'"
            ).to_pylist()
        }
        self.clips_written = 0
        self.clips_recut = 0  # earlier clips of re-cut files (their features deleted)
        self.clips_dropped = 0  # ... of which the new config makes no clip any more (deleted)
        self.commits = 0
        self.commit_seconds = 0.0
        self.recorded_hashes = lance_store.existing_ids(
            tables.SOURCES.name, "source_hash", f"dataset = '{dataset}'"
        )

    def add_source(self, source: SourceIngest, status: str, clips: int) -> None:
        stats = source.curation_stats
        self.sources.append(
            {
                "source_id": tables.source_id(self.dataset, source.source_hash, self.fingerprint),
                "dataset": self.dataset,
                "source_path": str(source.path.absolute()),
                "source_hash": source.source_hash,
                "config_fingerprint": self.fingerprint,
                "status": status,
                "clips": clips,
                "time": datetime.now(UTC),
                "curation_stats": None if stats is None else json.dumps(stats, sort_keys=True),
            }
        )

    def add_reject(
        self,
        path: Path,
        source_hash: str,
        stage: str,
        reason: str,
        detail: str,
        value: float | None = None,
        segment: str = "",
    ) -> None:
        rid = tables.reject_id(self.dataset, str(path.absolute()), source_hash, stage, segment)
        if (rid, reason) in self.known_rejects:
            return
        self.known_rejects.add((rid, reason))
        self.rejects.append(
            {
                "reject_id": rid,
                "dataset": self.dataset,
                "source_path": str(path.absolute()),
                "stage": stage,
                "reason": reason,
                "detail": detail,
                "time": datetime.now(UTC),
                "value": value,
            }
        )

    def _previous_clips(self) -> set[str]:
        """Clip ids an earlier run cut from the files this batch re-cut (the same content under another config
        fingerprint): ids do not name the config, so without this their features would look done and clips
        the new config no longer makes would stay."""
        recut = sorted({row["source_hash"] for row in self.sources} & self.recorded_hashes)
        if not recut:
            return set()
        where = f"dataset = '{self.dataset}' AND " + lance_store.in_list("source_hash", recut)
        return lance_store.existing_ids(tables.CLIPS.name, tables.CLIPS.key, where)

    def full(self, max_files: int) -> bool:
        if self.files >= max_files:
            return True
        return sum(len(row["video"]) + len(row["audio"]) for row in self.clips) >= self.flush_bytes

    def flush(self) -> str | None:
        """Commit the batch, clips before the ledger: a file is marked finished only once its clips are
        stored, so a kill between the writes only makes the next run redo (and overwrite) those files.
        Returns what was committed, or None when there was nothing to write."""
        if not (self.clips or self.rejects or self.sources):
            self.files = 0
            return None
        started = time.perf_counter()
        version = None
        stale = self._previous_clips()
        if stale:
            for table in tables.FEATURES:  # made from the old cut: extraction must redo them
                lance_store.delete_rows(table.name, lance_store.in_list(tables.CLIPS.key, stale))
        if self.clips:
            version = lance_store.upsert(
                tables.CLIPS.name, pa.Table.from_pylist(self.clips, tables.CLIPS.schema), tables.CLIPS.key
            )
            self.clips_written += len(self.clips)
        gone = stale - {row["clip_id"] for row in self.clips}
        if gone:
            self.clips_dropped += lance_store.delete_rows(
                tables.CLIPS.name, lance_store.in_list(tables.CLIPS.key, gone)
            )
        self.clips_recut += len(stale)
        if self.rejects:
            lance_store.upsert(
                tables.REJECTS.name,
                pa.Table.from_pylist(self.rejects, tables.REJECTS.schema),
                tables.REJECTS.key,
            )
        if self.sources:
            lance_store.upsert(
                tables.SOURCES.name,
                pa.Table.from_pylist(self.sources, tables.SOURCES.schema),
                tables.SOURCES.key,
            )
        self.commit_seconds += time.perf_counter() - started
        self.commits += 1
        done = (
            f"committed batch {self.commits}: {len(self.clips)} clips, {len(self.rejects)} rejects, "
            f"{len(self.sources)} files finished" + (f" (clips v{version})" if version is not None else "")
        )
        self.clips, self.rejects, self.sources, self.files = [], [], [], 0
        return done


def sync_filter_weights(config: DataConfig, weights: WeightsRegistry | None) -> tuple[Path | None, str]:
    """(the SyncNet file the sync filter runs with, or None, and what the report says about it).

    crop_mode=track only (other modes: (None, "")). The filter runs only with the real `syncnet_v2.model`:
    a missing file or a random stand-in (`dualforce weights init-random`) would keep or reject clips for no
    reason, so then it is skipped, with one warning saying why and how to enable it."""
    if config.crop_mode != "track":
        return None, ""
    sync = config.curation.sync
    location = weights.location("syncnet") if weights is not None else None
    if not sync.enabled:
        why = "data.curation.sync.enabled=false"
    elif location is None:
        why = "no weights registry was given to ingestion"
    elif not location.is_file():
        why = f"no SyncNet weights at {location}"
    elif weights is not None and weights.is_stand_in("syncnet"):
        why = f"{location} is a random stand-in (dualforce weights init-random), not the real network"
    elif (config.fps, config.audio_sample_rate) != (FPS, SAMPLE_RATE):
        why = f"SyncNet needs {FPS} fps and {SAMPLE_RATE} Hz audio (data.fps / data.audio_sample_rate)"
    elif config.clip_frames < SYNC_MIN_FRAMES:
        why = f"data.clip_frames={config.clip_frames} is shorter than one SyncNet window ({SYNC_MIN_FRAMES})"
    else:
        from dualforce_core.metrics.syncnet import load_syncnet  # torch: only where the filter runs

        load_syncnet(location)  # a corrupt or foreign file: one clear error here, not one per worker and file
        return location, (
            f"on (SyncNet {location}; kept: Sync-C >= {sync.min_confidence}, |offset| <= "
            f"{sync.max_offset} frames, audio shifted by the offset)"
        )
    if sync.enabled:
        log.warning(
            "SyncNet filter skipped: %s. Clips keep their unshifted audio and no clip is rejected for sync. "
            "To run it, put the real syncnet_v2.model (joonson/syncnet_python) at weights.paths.syncnet.",
            why,
        )
    return None, f"SKIPPED ({why}; the real syncnet_v2.model at weights.paths.syncnet enables it)"


def ingest_dataset(
    dataset: str,
    src: Path,
    config: DataConfig,
    progress: bool = True,
    weights: WeightsRegistry | None = None,
) -> IngestReport:
    """Ingest every video under `src` into the `clips` table as dataset `dataset`; see the module doc.
    `weights`: where SyncNet is looked for (crop_mode=track's sync filter; None: the filter is skipped)."""
    _check_request(dataset, src)
    return ingest_files(dataset, src, discover(src, config), config, progress, weights)


def _check_request(dataset: str, src: Path) -> None:
    if not DATASET_NAME.match(dataset):
        raise UserError(f"dataset name {dataset!r} must be letters, digits, '_', '-' or '.'")
    if not src.is_dir():
        raise UserError(f"source folder {src} does not exist or is not a folder")


def _prepare(dataset: str, src: Path, config: DataConfig) -> Finder:
    """Fail on a bad request before any file is touched; the face finder when the crop mode needs one
    (crop_mode=track: checked here, loaded by the first process that cuts a file)."""
    _check_request(dataset, src)
    return load_finder(config, lazy=True)


def ingest_files(
    dataset: str,
    src: Path,
    found: tuple[list[Path], list[Path]],
    config: DataConfig,
    progress: bool = True,
    weights: WeightsRegistry | None = None,
) -> IngestReport:
    """Ingest an already discovered (videos, other files) list; files may have changed since."""
    detector = _prepare(dataset, src, config)
    syncnet, sync_note = sync_filter_weights(config, weights)
    videos, others = found
    fingerprint = config_fingerprint(config, syncnet)
    done = lance_store.existing_ids(tables.SOURCES.name, tables.SOURCES.key, f"dataset = '{dataset}'")
    report = IngestReport(
        dataset=dataset,
        files_seen=len(videos) + len(others),
        workers=config.workers,
        commit_every=config.commit_every,
        sync_filter=sync_note,
    )
    batch = _Batch(dataset, fingerprint, config.write_batch_mb << 20)
    started = time.perf_counter()
    seen_hashes: dict[str, Path] = {}
    pending: deque[tuple[SourceIngest, Cut | Handle]] = deque()
    settled = 0

    def reject(
        path: Path, source_hash: str, stage: str, reason: str, detail: str, value: float | None = None
    ) -> str:
        batch.add_reject(path, source_hash, stage, reason, detail, value)
        report.rejects[reason] += 1
        return f"rejected: {reason} ({detail})"

    def commit() -> None:
        committed = batch.flush()
        if committed and progress:
            print(committed, file=sys.stderr, flush=True)

    def settle(cutter: Cutter[Finder]) -> None:
        """Take the oldest source's result into the batch, and commit when the batch is full."""
        nonlocal settled
        source, work = pending.popleft()
        cut = work if isinstance(work, Cut) else cutter.result(work)
        outcome = _record(source, cut, batch, report, reject)
        settled += 1
        if progress:
            print(f"[{settled}/{len(videos)}] {_relative(source.path, src)}: {outcome}", file=sys.stderr)
        if batch.full(config.commit_every):
            commit()

    try:
        for path in others:
            reject(path, "", "discover", "not_video", f"extension {path.suffix or '(none)'!r} is not a video")
        with Cutter[Finder](
            config.workers, cut_source, partial(load_finder, config, syncnet), detector
        ) as cutter:
            for path in videos:
                while pending and cutter.busy:
                    settle(cutter)
                source = SourceIngest(path, dataset, config, detector)
                checked = _check(source, fingerprint, done, seen_hashes)
                if checked is None:  # still to be cut: in this process or a worker
                    pending.append((source, cutter.submit(Job(path, dataset, source.source_hash, config))))
                else:
                    pending.append((source, checked))
            while pending:
                settle(cutter)
    finally:
        commit()
        report.seconds = time.perf_counter() - started
        report.clips_written = batch.clips_written
        report.clips_recut = batch.clips_recut
        report.clips_dropped = batch.clips_dropped
        report.batches_committed = batch.commits
        report.commit_seconds = batch.commit_seconds
        report.versions = {
            name: lance_store.table_version(name)
            for name in (tables.CLIPS.name, tables.REJECTS.name, tables.SOURCES.name)
        }
    return report


def _check(
    source: SourceIngest, fingerprint: str, done: set[str], seen_hashes: dict[str, Path]
) -> Cut | None:
    """The parent's part of a source: read and hash it, skip it when an earlier run finished it, reject a
    second copy of the same content; None when it still has to be cut."""
    try:
        _check_readable(source.path)
        source.source_hash = source_hash = _hash_source(source.path)
        if tables.source_id(source.dataset, source_hash, fingerprint) in done:
            return Cut(skipped=True)
        if source_hash in seen_hashes:
            raise MediaError("duplicate", f"same content as {seen_hashes[source_hash]}")
        seen_hashes[source_hash] = source.path
    except MediaError as err:
        return Cut(stage=source.stage, reason=err.reason, detail=err.detail)
    except Exception as err:
        return internal(source.stage, err)
    return None


def _record(
    source: SourceIngest,
    cut: Cut,
    batch: _Batch,
    report: IngestReport,
    reject: Callable[[Path, str, str, str, str, float | None], str],
) -> str:
    """The per-file boundary: a source's result into the batch (every failure is one reject) and the
    report; returns the one-line outcome."""
    report.frames_decoded += cut.frames_decoded
    if cut.skipped:
        report.files_skipped += 1
        return "skipped"
    batch.files += 1
    if cut.reason:
        if cut.trace:
            log.debug("internal error ingesting %s:\n%s", source.path, cut.trace)
        if source.source_hash and cut.reason not in RETRYABLE | {"duplicate"}:
            batch.add_source(source, "rejected", 0)
        return reject(source.path, source.source_hash, cut.stage, cut.reason, cut.detail, cut.value)
    for segment in cut.segment_rejects:
        batch.add_reject(
            source.path,
            source.source_hash,
            CURATE_STAGE,
            segment["reason"],
            segment["detail"],
            segment["value"],
            segment["segment"],
        )
        report.segments_rejected[segment["reason"]] += 1
    if cut.curation_stats is not None:
        source.curation_stats = dict(cut.curation_stats)
        report.curation_cpu_s += float(source.curation_stats.pop("cpu_s", 0.0))
    batch.clips.extend(cut.rows)
    batch.add_source(source, "ingested", len(cut.rows))
    report.files_ingested += 1
    refused = f", {len(cut.segment_rejects)} frame ranges rejected" if cut.segment_rejects else ""
    return f"ingested, {len(cut.rows)} clips{refused}"


def _relative(path: Path, src: Path) -> str:
    try:
        return str(path.relative_to(src))
    except ValueError:
        return str(path)
