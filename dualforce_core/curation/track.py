"""The single streaming pass over a video: cuts, detection every k frames, tracking in between, landmarks
on every frame, identity embeddings every few frames.

Per frame t:
1. The cut detector sees the frame; on a cut every open track is closed (its frames are kept: the cut
   explains why the face went) and the detector runs now.
2. Each open track predicts its box: dlib's correlation tracker (`tracker="correlation"`; its
   peak-to-sidelobe ratio below `min_psr` means it lost the face, so the detector runs now), or the box of
   the previous frame's landmarks, re-fitted (`tracker="landmarks"`).
3. On detection frames (every `detect_every` frames, at a cut, on a loss) detections are matched to the
   predicted boxes by IoU (greedy, best first). A matched track is *confirmed* here and its tracker
   restarts on the detection; an unmatched track is closed and its frames since its last confirmation
   are rejected (`lost_face`: the tracker may have drifted onto background); an unmatched detection opens
   a track.
4. The 68 landmarks are fitted in every open track's box, and the variance of the Laplacian of the
   aligned grey crop is recorded (the blur measure).
5. Every `embed_every` frames of a track (and on its first frame) the 128-d descriptor is compared with
   the mean of the track's accepted descriptors. Beyond `identity_threshold` the track is split where the
   person changed: the 150×150 face chips of the frames since the last accepted descriptor are kept
   (~67 kB each), so a bisection over them (log2(embed_every) more descriptors) finds the first frame of
   the new person, and the new track starts there. Nothing is lost at an identity change the cut
   detector missed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np

from dualforce_core.curation.align import crop_affine, transform_points, warp
from dualforce_core.curation.config import CurationConfig
from dualforce_core.curation.faces import Box, Detection, FaceModels, iou, landmarks_box
from dualforce_core.curation.scenes import CutDetector

BLUR_SIZE = 256
"""The blur measure is taken on the aligned crop at this size, whatever `crop_size` is."""


@dataclass
class TrackFrame:
    frame: int
    box: Box
    landmarks: np.ndarray
    """Raw (unsmoothed) 68 landmarks [68, 2] in source pixels."""
    confirmed: bool
    blur: float


@dataclass
class Embedding:
    frame: int
    vector: np.ndarray
    distance: float
    """To the mean of the track's accepted descriptors before it (0 for the first)."""


@dataclass(frozen=True)
class Reject:
    """Frames [start, end) that give no clip, why, and the measured value behind the decision.

    The tracker makes `lost_face` ones; `curate` the rest (`curate.REJECT_REASONS`)."""

    start: int
    end: int
    reason: str
    value: float
    track_id: int | None
    detail: str


@dataclass
class RawTrack:
    track_id: int
    frames: list[TrackFrame] = field(default_factory=list)
    embeddings: list[Embedding] = field(default_factory=list)
    end_reason: str = ""
    tracker: object | None = None
    box_offsets: np.ndarray | None = None
    last_embed: int = -(10**9)
    chips: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """Face chips of the frames since the last accepted descriptor (to locate an identity change)."""

    @property
    def start(self) -> int:
        return self.frames[0].frame

    @property
    def end(self) -> int:
        return self.frames[-1].frame + 1

    def reference(self) -> np.ndarray | None:
        if not self.embeddings:
            return None
        return np.mean([e.vector for e in self.embeddings], axis=0)


def laplacian_variance(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: low means blurred (Pech-Pacheco et al., 2000)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def face_sharpness(rgb: np.ndarray, landmarks: np.ndarray, config: CurationConfig) -> float:
    """Variance of the Laplacian of the aligned grey crop at `BLUR_SIZE` pixels, inside the landmarks' box.

    A fixed resolution makes the number comparable whatever `crop_size` is; the landmark box keeps hair,
    clothes and background (whose texture varies far more than a face's) out of it.
    """
    affine = crop_affine(landmarks, BLUR_SIZE, config.align)
    crop = warp(rgb, affine, BLUR_SIZE, config.align.border)
    lap = cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F)
    points = transform_points(landmarks, affine)
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, BLUR_SIZE - 1)
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + 1, 1, BLUR_SIZE)
    inner = lap[y0:y1, x0:x1]
    return float(inner.var()) if inner.size > 1 else 0.0


class FaceTracker:
    """Feed frames in order with `update`, then `finish` for the tracks and the rejects made on the way."""

    def __init__(self, config: CurationConfig, models: FaceModels) -> None:
        self.config = config
        self.models = models
        self.cuts = CutDetector(config.cuts)
        self.active: list[RawTrack] = []
        self.done: list[RawTrack] = []
        self.rejects: list[Reject] = []
        self.last_detect = -(10**9)
        self.next_id = 0
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def _time(self, name: str, started: float) -> float:
        now = time.process_time()
        self.seconds[name] += now - started
        return now

    def update(self, index: int, rgb: np.ndarray) -> None:
        config = self.config
        started = time.process_time()
        cut = self.cuts.update(rgb)
        started = self._time("cuts", started)
        if cut:
            for track in self.active:
                self._close(track, "cut")
            self.active = []
        predicted: dict[int, Box] = {}
        lost = False
        for track in self.active:
            box, ok = self._predict(track, rgb)
            predicted[track.track_id] = box
            lost = lost or not ok
        started = self._time("track", started)
        confirmed: set[int] = set()
        if cut or lost or index - self.last_detect >= config.detect_every:
            detections = self.models.detect(rgb, config.min_score)
            self.last_detect = index
            self.counts["detections"] += 1
            started = self._time("detect", started)
            confirmed = self._associate(rgb, detections, predicted)
        started = time.process_time()
        for track in list(self.active):
            box = predicted[track.track_id]
            landmarks = self.models.landmarks(rgb, box)
            self.counts["landmarks"] += 1
            if track.track_id in confirmed:
                self._remember_box(track, box, landmarks)
            started = self._time("landmarks", started)
            blur = face_sharpness(rgb, landmarks, config)
            started = self._time("blur", started)
            frame = TrackFrame(index, box, landmarks, track.track_id in confirmed, blur)
            track = self._check_identity(track, frame, rgb)
            started = self._time("embed", started)
            track.frames.append(frame)

    def finish(self) -> tuple[list[RawTrack], list[Reject]]:
        for track in self.active:
            self._close(track, "end")
        self.active = []
        tracks = sorted((t for t in self.done if t.frames), key=lambda t: t.track_id)
        return tracks, self.rejects

    # -- steps -------------------------------------------------------------------------------------------

    def _predict(self, track: RawTrack, rgb: np.ndarray) -> tuple[Box, bool]:
        if self.config.tracker == "correlation":
            psr = float(track.tracker.update(rgb))  # type: ignore[attr-defined]
            rect = track.tracker.get_position()  # type: ignore[attr-defined]
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            return box, psr >= self.config.min_psr
        last = track.frames[-1].landmarks
        x0, y0, x1, y1 = landmarks_box(last)
        w, h = x1 - x0, y1 - y0
        assert track.box_offsets is not None
        dx0, dy0, dx1, dy1 = track.box_offsets
        return (x0 + dx0 * w, y0 + dy0 * h, x1 + dx1 * w, y1 + dy1 * h), True

    def _associate(self, rgb: np.ndarray, detections: list[Detection], predicted: dict[int, Box]) -> set[int]:
        pairs = sorted(
            (
                (-iou(predicted[track.track_id], det.box), track.track_id, number)
                for track in self.active
                for number, det in enumerate(detections)
            ),
        )
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        for negative, track_id, number in pairs:
            if -negative < self.config.match_iou or track_id in matched_tracks or number in matched_dets:
                continue
            matched_tracks.add(track_id)
            matched_dets.add(number)
            predicted[track_id] = detections[number].box
        survivors: list[RawTrack] = []
        for track in self.active:
            if track.track_id in matched_tracks:
                self._start_tracker(track, rgb, predicted[track.track_id])
                survivors.append(track)
            else:
                self._close(track, "lost")
        for number, det in enumerate(detections):
            if number in matched_dets:
                continue
            track = RawTrack(self.next_id)
            self.next_id += 1
            self._start_tracker(track, rgb, det.box)
            predicted[track.track_id] = det.box
            matched_tracks.add(track.track_id)
            survivors.append(track)
        self.active = survivors
        return matched_tracks

    def _start_tracker(self, track: RawTrack, rgb: np.ndarray, box: Box) -> None:
        if self.config.tracker != "correlation":
            return
        dlib = self.models.dlib
        if track.tracker is None:
            track.tracker = dlib.correlation_tracker()
        x0, y0, x1, y1 = box
        track.tracker.start_track(rgb, dlib.drectangle(x0, y0, x1, y1))  # type: ignore[attr-defined]

    def _remember_box(self, track: RawTrack, box: Box, landmarks: np.ndarray) -> None:
        """How the detector's box sits around the landmarks, for the landmark re-fit tracker."""
        x0, y0, x1, y1 = landmarks_box(landmarks)
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        track.box_offsets = np.array(
            [(box[0] - x0) / w, (box[1] - y0) / h, (box[2] - x1) / w, (box[3] - y1) / h]
        )

    def _check_identity(self, track: RawTrack, frame: TrackFrame, rgb: np.ndarray) -> RawTrack:
        """Keep the face chip; when an embedding is due, compare it, and split the track on a new person."""
        config = self.config
        chip = self.models.face_chip(rgb, frame.landmarks)
        if track.embeddings and frame.frame - track.last_embed < config.embed_every:
            track.chips.append((frame.frame, chip))
            return track
        vector = self._embed(chip)
        track.last_embed = frame.frame
        reference = track.reference()
        distance = 0.0 if reference is None else float(np.linalg.norm(vector - reference))
        if reference is None or distance <= config.identity_threshold:
            track.embeddings.append(Embedding(frame.frame, vector, distance))
            track.chips = []
            return track
        # Another person: bisect the chips kept since the last match for the first frame that is not the
        # track's person (one change between two checks is assumed), and start a new track there.
        assert reference is not None
        lo, hi = -1, len(track.chips)
        first = Embedding(frame.frame, vector, distance)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            number, mid_chip = track.chips[mid]
            mid_vector = self._embed(mid_chip)
            mid_distance = float(np.linalg.norm(mid_vector - reference))
            if mid_distance <= config.identity_threshold:
                lo = mid
            else:
                hi = mid
                first = Embedding(number, mid_vector, mid_distance)
        self.counts["identity_splits"] += 1
        tracker = track.tracker
        moved = [f for f in track.frames if f.frame >= first.frame]
        track.frames = [f for f in track.frames if f.frame < first.frame]
        track.chips = []
        self._close(track, "identity")
        new = RawTrack(self.next_id, tracker=tracker, box_offsets=track.box_offsets)
        self.next_id += 1
        new.frames = moved
        new.last_embed = frame.frame
        new.embeddings.append(Embedding(first.frame, first.vector, 0.0))
        if first.frame != frame.frame:
            new.embeddings.append(
                Embedding(frame.frame, vector, float(np.linalg.norm(vector - first.vector)))
            )
        self.active[self.active.index(track)] = new
        return new

    def _embed(self, chip: np.ndarray) -> np.ndarray:
        self.counts["embeddings"] += 1
        return self.models.embed_chip(chip)

    def _close(self, track: RawTrack, reason: str) -> None:
        track.end_reason = reason
        track.tracker = None
        if reason == "lost" and track.frames:
            last = max((n for n, f in enumerate(track.frames) if f.confirmed), default=-1)
            tail = track.frames[last + 1 :]
            if tail:
                self.rejects.append(
                    Reject(
                        tail[0].frame,
                        tail[-1].frame + 1,
                        "lost_face",
                        float(len(tail)),
                        track.track_id,
                        "the detector no longer finds the tracked face; frames since it last did are dropped",
                    )
                )
            track.frames = track.frames[: last + 1]
        if track.frames:
            self.done.append(track)
