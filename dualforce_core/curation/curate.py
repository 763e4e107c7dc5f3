"""One source video → face clips (aligned-crop geometry per frame) and rejects with reasons and values.

`curate_video(path)` (or `curate_frames(frames)`) runs the tracking pass of `curation.track`, then per
track:

1. measures each frame's crop rectangle (`curation.align`) on its raw landmarks, and flags frames, most
   important first: `several_faces` (no face dominates: the largest is not `dominance`
   times the next), `secondary_face` (another face dominates this one: it is not the speaker),
   `tiny_face` (landmark extent below `min_face_px`), `head_motion` (the crop moves, scales or rolls more
   than `max_motion` between frames). Another track counts as a face only once the detector has confirmed
   it `min_confirmations` times, so a one-off false detection does not split a good clip;
2. cuts the track at flagged frames; each flagged run is one reject, each clean run is a clip unless its
   median blur (variance of the Laplacian in the face box of the aligned crop) is below `min_blur`
   (`blur`) or it is shorter than `min_frames` (`short_track`);
3. smooths each clip's landmarks over time (`curation.smoothing`; within the clip only, never across a
   split) and derives each frame's crop affine from the smoothed landmarks, so the framing does not
   jitter; the landmarks stored in crop pixels are the raw ones carried through that affine (smoothing
   them would dampen the lips).
Frames no track covers, and no reject already explains, become `no_face` rejects. So every frame of the
video is in a clip or in a reject, and nothing is dropped silently.

Everything is deterministic (dlib on CPU, fixed tie-breaks, stable sorts): a re-run on the same input
gives the same result (`CurationResult.digest()`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dualforce_core.curation.align import (
    align_crop,
    crop_rect,
    rect_affine,
    rescale_affine,
    transform_points,
    warp,
)
from dualforce_core.curation.config import AlignConfig, CurationConfig, curation_fingerprint
from dualforce_core.curation.faces import FaceModels
from dualforce_core.curation.smoothing import smooth_landmarks
from dualforce_core.curation.track import FaceTracker, RawTrack, Reject
from dualforce_core.errors import UserError
from dualforce_core.timeline import FPS

FRAME_REASONS = ("several_faces", "secondary_face", "tiny_face", "head_motion")
"""Per-frame reasons, most important first: a frame carries the first that applies."""
REJECT_REASONS = (*FRAME_REASONS, "blur", "short_track", "lost_face", "no_face")
"""Every reason a `Reject` can carry (the tracker adds `lost_face`: frames after a face's last detection)."""


@dataclass(frozen=True)
class Clip:
    """A run of frames [start, end) of one face of one person, with its aligned-crop geometry."""

    track_id: int
    start: int
    end: int
    crop_size: int
    embedding: np.ndarray
    """[128] float64: mean dlib descriptor of the clip (same person: Euclidean distance < 0.6)."""
    landmarks: np.ndarray
    """[T, 68, 2] float64: the detected landmarks in crop pixels (crop_size × crop_size)."""
    affines: np.ndarray
    """[T, 2, 3] float64: source pixels → crop pixels, from the smoothed landmarks."""
    face_px: float
    """Median landmark extent in source pixels."""
    blur: float
    """Median variance of the Laplacian of the aligned grey crop."""

    @property
    def frames(self) -> int:
        return self.end - self.start

    def window(self, start: int, length: int) -> Clip:
        """Frames [start, start + length) of this clip as a clip of its own (ingestion's fixed windows)."""
        if not (self.start <= start and start + length <= self.end and length > 0):
            raise ValueError(f"window {start}+{length} is outside clip [{self.start}, {self.end})")
        first = start - self.start
        part = slice(first, first + length)
        return replace(
            self, start=start, end=start + length, landmarks=self.landmarks[part], affines=self.affines[part]
        )

    def affines_at(self, size: int) -> np.ndarray:
        """The affines for a size×size crop (e.g. 224 for SyncNet, 512 for LivePortrait)."""
        return rescale_affine(self.affines, self.crop_size, size)


@dataclass
class CurationResult:
    frames: int
    width: int
    height: int
    fps: float
    clips: list[Clip]
    rejects: list[Reject]
    cuts: list[int]
    fingerprint: str
    stats: dict[str, float] = field(default_factory=dict)
    """Counts, and CPU seconds per stage (`*_s`; process time, so a busy machine does not inflate them) —
    not part of the digest: timings vary from run to run."""

    def digest(self) -> str:
        """A hash of everything but the timings: equal digests mean an identical result."""
        h = hashlib.sha256()
        h.update(repr((self.frames, self.width, self.height, self.fps, self.cuts, self.fingerprint)).encode())
        for clip in self.clips:
            h.update(
                repr((clip.track_id, clip.start, clip.end, clip.crop_size, clip.face_px, clip.blur)).encode()
            )
            for array in (clip.embedding, clip.landmarks, clip.affines):
                h.update(np.ascontiguousarray(array, np.float64).tobytes())
        for reject in self.rejects:
            h.update(repr((reject.start, reject.end, reject.reason, reject.value, reject.track_id)).encode())
        return h.hexdigest()

    def coverage(self) -> np.ndarray:
        """Per frame: 1 in a clip, 2 only in rejects, 0 in neither (never, by construction)."""
        state = np.zeros(self.frames, np.int8)
        for reject in self.rejects:
            state[reject.start : reject.end] = 2
        for clip in self.clips:
            state[clip.start : clip.end] = 1
        return state

    def summary(self) -> str:
        reasons: dict[str, int] = defaultdict(int)
        for reject in self.rejects:
            reasons[reject.reason] += reject.end - reject.start
        kept = sum(clip.frames for clip in self.clips)
        text = ", ".join(f"{r}={n}" for r, n in sorted(reasons.items())) or "none"
        return (
            f"{self.frames} frames, {len(self.cuts)} cuts, {len(self.clips)} clips ({kept} frames); "
            f"rejected frames by reason: {text}"
        )


# -- per-track analysis ----------------------------------------------------------------------------------


@dataclass
class _Geometry:
    """A track's frames with the crop rectangle of each frame's raw landmarks."""

    frames: np.ndarray
    raw: np.ndarray
    extent: np.ndarray
    centre: np.ndarray
    angle: np.ndarray
    blur: np.ndarray


def _geometry(track: RawTrack, config: CurationConfig) -> _Geometry:
    raw = np.stack([f.landmarks for f in track.frames])
    rects = [crop_rect(p, config.align) for p in raw]
    return _Geometry(
        frames=np.array([f.frame for f in track.frames]),
        raw=raw,
        extent=np.array([r.extent for r in rects]),
        centre=np.array([r.centre for r in rects]),
        angle=np.array([r.angle for r in rects]),
        blur=np.array([f.blur for f in track.frames]),
    )


def _affines(raw: np.ndarray, config: CurationConfig, fps: float) -> np.ndarray:
    """Per-frame source → crop affines of one clean run, from its smoothed landmarks."""
    extent = float(np.median([crop_rect(p, config.align).extent for p in raw]))
    smooth = smooth_landmarks(raw, config.smoothing, fps, extent)
    return np.stack(
        [rect_affine(crop_rect(p, config.align), config.crop_size, config.align.rotate) for p in smooth]
    )


def _motion(geometry: _Geometry) -> np.ndarray:
    """Per frame: the largest of centre shift / extent, |Δ log extent| and |Δ roll| since the frame before.

    Measured on the raw landmarks, so a jump is seen whole (smoothing would spread it below the limit)."""
    motion = np.zeros(len(geometry.frames))
    if len(motion) < 2:
        return motion
    shift = np.linalg.norm(np.diff(geometry.centre, axis=0), axis=1) / geometry.extent[1:]
    scale = np.abs(np.diff(np.log(geometry.extent)))
    roll = np.abs((np.diff(geometry.angle) + math.pi) % (2 * math.pi) - math.pi)
    motion[1:] = np.maximum(np.maximum(shift, scale), roll)
    return motion


def _frame_reasons(
    track: RawTrack, geometry: _Geometry, sizes: dict[int, list[tuple[float, int]]], config: CurationConfig
) -> list[tuple[str, float] | None]:
    motion = _motion(geometry)
    out: list[tuple[str, float] | None] = []
    for n, frame in enumerate(geometry.frames):
        extent = float(geometry.extent[n])
        present = sorted(sizes[int(frame)], reverse=True)
        counted = any(track_id == track.track_id for _, track_id in present)
        reason: tuple[str, float] | None = None
        if counted and len(present) > 1:
            largest, second = present[0][0], present[1][0]
            dominant = largest >= config.dominance * second
            if config.several_faces == "reject" or not dominant:
                reason = ("several_faces", float(len(present)))
            elif present[0][1] != track.track_id:
                reason = ("secondary_face", extent / largest)
        if reason is None and extent < config.min_face_px:
            reason = ("tiny_face", extent)
        if reason is None and motion[n] > config.max_motion:
            reason = ("head_motion", float(motion[n]))
        out.append(reason)
    return out


_DETAILS = {
    "several_faces": "several faces and none dominates (the largest is not {dominance}× the next)",
    "secondary_face": "another face dominates the frame; this one (size ratio = value) is not the speaker",
    "tiny_face": "face smaller than min_face_px={min_face_px} (landmark extent in source pixels = value)",
    "head_motion": "the head moves more than max_motion={max_motion} between frames",
    "blur": "median variance of the Laplacian of the aligned crop below min_blur={min_blur}",
    "short_track": "fewer than min_frames={min_frames} clean frames in a row",
    "no_face": "no face found",
}


def _aggregate(reason: str, values: list[float]) -> float:
    if reason in ("several_faces", "head_motion"):
        return float(max(values))
    return float(np.median(values))


def _embedding(track: RawTrack, start: int, end: int) -> np.ndarray:
    inside = [e.vector for e in track.embeddings if start <= e.frame < end]
    if not inside:
        middle = (start + end) / 2
        inside = [min(track.embeddings, key=lambda e: (abs(e.frame - middle), e.frame)).vector]
    return np.mean(inside, axis=0)


def _split_track(
    track: RawTrack,
    geometry: _Geometry,
    reasons: list[tuple[str, float] | None],
    config: CurationConfig,
    fps: float,
) -> tuple[list[Clip], list[Reject]]:
    clips: list[Clip] = []
    rejects: list[Reject] = []
    details = config.model_dump()
    labels = [reason[0] if reason is not None else None for reason in reasons]
    n = 0
    while n < len(reasons):
        label = labels[n]
        m = n
        while m < len(reasons) and labels[m] == label:
            m += 1
        start, end = int(geometry.frames[n]), int(geometry.frames[m - 1]) + 1
        if label is not None:
            values = [r[1] for r in reasons[n:m] if r]
            rejects.append(
                Reject(
                    start,
                    end,
                    label,
                    _aggregate(label, values),
                    track.track_id,
                    _DETAILS[label].format(**details),
                )
            )
        else:
            blur = float(np.median(geometry.blur[n:m]))
            if blur < config.min_blur:
                rejects.append(
                    Reject(start, end, "blur", blur, track.track_id, _DETAILS["blur"].format(**details))
                )
            elif m - n < config.min_frames:
                rejects.append(
                    Reject(
                        start,
                        end,
                        "short_track",
                        float(m - n),
                        track.track_id,
                        _DETAILS["short_track"].format(**details),
                    )
                )
            else:
                affines = _affines(geometry.raw[n:m], config, fps)
                landmarks = np.stack([transform_points(p, a) for p, a in zip(geometry.raw[n:m], affines)])
                clips.append(
                    Clip(
                        track_id=track.track_id,
                        start=start,
                        end=end,
                        crop_size=config.crop_size,
                        embedding=_embedding(track, start, end),
                        landmarks=landmarks,
                        affines=affines,
                        face_px=float(np.median(geometry.extent[n:m])),
                        blur=blur,
                    )
                )
        n = m
    return clips, rejects


def _no_face(frames: int, clips: list[Clip], rejects: list[Reject]) -> list[Reject]:
    covered = np.zeros(frames, bool)
    for span in [(c.start, c.end) for c in clips] + [(r.start, r.end) for r in rejects]:
        covered[span[0] : span[1]] = True
    out: list[Reject] = []
    n = 0
    while n < frames:
        if covered[n]:
            n += 1
            continue
        m = n
        while m < frames and not covered[m]:
            m += 1
        out.append(Reject(n, m, "no_face", 0.0, None, _DETAILS["no_face"]))
        n = m
    return out


def assemble(
    tracks: list[RawTrack],
    tracker_rejects: list[Reject],
    frames: int,
    config: CurationConfig,
    fps: float,
) -> tuple[list[Clip], list[Reject]]:
    """Tracks of the tracking pass → clips and rejects (steps 1–3 of the module doc)."""
    geometries = {track.track_id: _geometry(track, config) for track in tracks}
    sizes: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for track in tracks:
        if sum(f.confirmed for f in track.frames) < config.min_confirmations:
            continue  # a one-off detection: it gives its own (short) reject, but is not another face
        geometry = geometries[track.track_id]
        for frame, extent in zip(geometry.frames, geometry.extent):
            sizes[int(frame)].append((float(extent), track.track_id))
    clips: list[Clip] = []
    rejects = list(tracker_rejects)
    for track in tracks:
        geometry = geometries[track.track_id]
        reasons = _frame_reasons(track, geometry, sizes, config)
        made, refused = _split_track(track, geometry, reasons, config, fps)
        clips.extend(made)
        rejects.extend(refused)
    rejects.extend(_no_face(frames, clips, rejects))
    clips.sort(key=lambda c: (c.start, c.track_id))
    rejects.sort(key=lambda r: (r.start, r.end, r.reason, -1 if r.track_id is None else r.track_id))
    return clips, rejects


# -- entry points ----------------------------------------------------------------------------------------


def load_models(config: CurationConfig) -> FaceModels:
    return FaceModels(config.detector, config.upsample)


def curate_frames(
    frames: Iterable[np.ndarray],
    config: CurationConfig | None = None,
    models: FaceModels | None = None,
    fps: float = FPS,
) -> CurationResult:
    """Curate a sequence of uint8 RGB frames (one pass; frames are not kept)."""
    config = config or CurationConfig()
    models = models or load_models(config)
    if models.kind != config.detector or models.upsample != config.upsample:
        raise UserError(
            f"face models were loaded for detector={models.kind} upsample={models.upsample}, "
            f"the config asks for {config.detector} upsample={config.upsample}"
        )
    tracker = FaceTracker(config, models)
    started = time.process_time()
    width = height = 0
    count = 0
    for index, rgb in enumerate(frames):
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise UserError(f"frames must be uint8 RGB [H, W, 3], got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        tracker.update(index, rgb)
        count = index + 1
    tracks, tracker_rejects = tracker.finish()
    analysed = time.process_time()
    clips, rejects = assemble(tracks, tracker_rejects, count, config, fps)
    stats: dict[str, float] = {"frames": float(count), "tracks": float(len(tracks))}
    stats.update({f"{name}_s": seconds for name, seconds in tracker.seconds.items()})
    stats.update({name: float(value) for name, value in tracker.counts.items()})
    stats["pass_s"] = analysed - started
    stats["assemble_s"] = time.process_time() - analysed
    return CurationResult(
        frames=count,
        width=width,
        height=height,
        fps=float(fps),
        clips=clips,
        rejects=rejects,
        cuts=list(tracker.cuts.cuts),
        fingerprint=curation_fingerprint(config),
        stats=stats,
    )


def video_frames(path: Path, fps: int | None = FPS) -> Iterator[np.ndarray]:
    """RGB frames of a video; with `fps`, on ingestion's constant-rate grid (`data.media.resample_frames`),
    so frame indices are the ones ingestion cuts clips at."""
    from dualforce_core.data import media

    decoded = media.decode_frames(path)
    if fps is None:
        for _, frame in decoded:
            yield frame.to_ndarray(format="rgb24")
        return
    last: tuple[Any, np.ndarray] | None = None
    for _, frame in media.resample_frames(decoded, fps):
        if last is None or last[0] is not frame:
            last = (frame, frame.to_ndarray(format="rgb24"))
        yield last[1]


def curate_video(
    path: Path,
    config: CurationConfig | None = None,
    models: FaceModels | None = None,
    fps: int | None = FPS,
) -> CurationResult:
    """Curate one source video: the one call per file that ingestion makes."""
    started = time.process_time()
    result = curate_frames(
        video_frames(Path(path), fps), config, models, float(fps or 0) or _native_fps(path)
    )
    result.stats["total_s"] = time.process_time() - started
    return result


def _native_fps(path: Path) -> float:
    from dualforce_core.data import media

    return media.probe(Path(path)).native_fps


def iter_clip_crops(
    frames: Iterable[np.ndarray], clips: list[Clip], size: int | None = None, align: AlignConfig | None = None
) -> Iterator[tuple[Clip, np.ndarray]]:
    """Second pass: (clip, uint8 crops [T, size, size, 3]) as each clip's last frame goes by.

    `frames` must be the sequence that was curated (e.g. `video_frames(path)` again). Only the frames of
    the clips still open are held.
    """
    border = (align or AlignConfig()).border
    pending = sorted(clips, key=lambda c: (c.start, c.track_id))
    open_clips: list[tuple[Clip, np.ndarray, list[np.ndarray]]] = []
    cursor = 0
    for index, rgb in enumerate(frames):
        while cursor < len(pending) and pending[cursor].start == index:
            clip = pending[cursor]
            side = size or clip.crop_size
            open_clips.append((clip, clip.affines_at(side), []))
            cursor += 1
        still: list[tuple[Clip, np.ndarray, list[np.ndarray]]] = []
        for clip, affines, crops in open_clips:
            side = size or clip.crop_size
            crops.append(warp(rgb, affines[index - clip.start], side, border))
            if index + 1 == clip.end:
                yield clip, np.stack(crops)
            else:
                still.append((clip, affines, crops))
        open_clips = still
        if cursor >= len(pending) and not open_clips:
            return


def align_portrait(
    rgb: np.ndarray, size: int, align: AlignConfig | None = None, models: FaceModels | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop, affine, landmarks in crop pixels) of the largest face of one image: the inference portrait."""
    models = models or FaceModels()
    found = models.detect(rgb)
    if not found:
        raise UserError(
            "no face found in the portrait; use a frontal photo where the face is clearly visible"
        )
    best = max(found, key=lambda d: ((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), d.score))
    landmarks = models.landmarks(rgb, best.box)
    crop, affine = align_crop(rgb, landmarks, size, align)
    return crop, affine, transform_points(landmarks, affine)
