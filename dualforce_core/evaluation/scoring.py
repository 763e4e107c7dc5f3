"""Per-clip network passes and the split-level numbers: FID, FVD, Sync-C/D, CSIM and ACD (and LMD).

Clips are scored one by one and only features are kept (Inception [T, 2048], I3D [1, 400] per clip),
so memory does not grow with the frames of a split. The ground truth is scored the same way as the
generated video: its Sync scores are the ceiling a generator can reach on this data, and its CSIM
(frames vs the first frame) is how much a real face drifts within a clip. With no generated video
(ground-truth-only mode) the ground truth stands in for it, so FID, FVD, ACD (and LMD) are 0 by
construction: a check of the pipeline, not of a model.

dlib runs when the config asks for it (`identity_network="dlib"`, `landmarks=True`): once per video on
256-px face crops, giving per frame the 68 landmarks (LMD, landmark mouth-audio r) and, for dlib identity,
the 128-d descriptor; frames where it finds no face are left out of those numbers, and clips without any
out of their split means.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np

from dualforce_core.evaluation.clips import EvalClip
from dualforce_core.evaluation.config import EvalConfig
from dualforce_core.metrics import (
    MetricNetworks,
    VideoFaces,
    dlib_faces,
    face_crops,
    feature_statistics,
    frechet_distance,
    fvd_clip,
    i3d_features,
    identity_embeddings,
    identity_scores,
    inception_features,
    landmark_audio_correlation,
    lmd,
    real_clip_start,
    sync_scores,
    syncnet_distances,
)
from dualforce_core.metrics.crops import sync_crops
from dualforce_core.metrics.identity import FACE_SIZE
from dualforce_core.metrics.syncnet import CROP_SIZE
from dualforce_core.timeline import SAMPLE_RATE

HEADLINE = ("fid", "fvd", "sync_c", "sync_d", "csim", "acd")
"""The numbers every report leads with (logged to MLflow as `eval/<name>`)."""

_FACE_DEPENDENT = frozenset({"csim", "acd", "gt_csim", "lmd", "lmk_mouth_audio_r", "gt_lmk_mouth_audio_r"})
"""Per-clip scores that are NaN when dlib finds no usable face in a clip; the split means skip those clips."""


@dataclass(frozen=True)
class ClipScores:
    clip_id: str
    identity: str
    frames: int
    sync_offset: int
    sync_c: float
    sync_d: float
    csim: float
    acd: float
    gt_sync_offset: int
    gt_sync_c: float
    gt_sync_d: float
    gt_csim: float
    mouth_audio_r: float = float("nan")  # NaN without a fitted mouth probe
    gt_mouth_audio_r: float = float("nan")
    lmd: float = float("nan")  # NaN unless eval.landmarks (or no frame with a face on both sides)
    lmk_mouth_audio_r: float = float("nan")
    gt_lmk_mouth_audio_r: float = float("nan")
    face_rate: float = float("nan")  # share of generated frames where dlib found a face (dlib runs only)
    gt_face_rate: float = float("nan")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: a metric that could not be computed (NaN) is None."""
        return {
            k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in asdict(self).items()
        }


class MetricAccumulator:
    """Feed it (ground truth, generated) clip pairs with `add`; `metrics()` gives the split's numbers."""

    def __init__(self, networks: MetricNetworks, config: EvalConfig) -> None:
        self.networks = networks
        self.config = config
        self.clips: list[ClipScores] = []
        self.seconds: dict[str, float] = defaultdict(float)
        self._inception: dict[str, list[np.ndarray]] = {"real": [], "fake": []}
        self._i3d: dict[str, list[np.ndarray]] = {"real": [], "fake": []}
        self._dlib: dlib_faces.DlibFaces | None = None  # sync_crop=aligned's landmarks
        self.sync_box_fallbacks = 0  # sync_crop=aligned: videos (real or generated) with no face: box crop

    @contextmanager
    def timed(self, metric: str) -> Iterator[None]:
        """Adds the block's wall time to `seconds[metric]` (the report divides by the clip count)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[metric] += time.perf_counter() - start

    def _landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """dlib's 68 landmarks of the largest face (sync_crop=aligned); loads dlib once if nothing else did."""
        if self._dlib is None:
            self._dlib = self.networks.dlib or dlib_faces.DlibFaces(self.config.dlib_models)
        face = self._dlib.find(frame)
        return None if face is None else face.landmarks

    def _sync(self, frames: np.ndarray, audio: np.ndarray) -> tuple[int, float, float]:
        config = self.config
        crops, aligned = sync_crops(
            frames, CROP_SIZE, config.sync_crop, config.sync_align, self._landmarks, config.sync_smoothing
        )
        if config.sync_crop == "aligned" and not aligned:
            self.sync_box_fallbacks += 1
        dists = syncnet_distances(self.networks.syncnet, crops, audio, self.config.sync_offsets)
        offset, confidence, distance = sync_scores(dists)
        return offset, confidence, distance

    def _fvd(self, clip_id: str, real: np.ndarray, fake: np.ndarray, ground_truth_only: bool) -> None:
        """One I3D clip per video (StyleGAN-V): ground truth from its seeded random start, generated from 0."""
        frames = self.config.fvd_clip_frames
        real_clip = fvd_clip(real, real_clip_start(len(real), clip_id, frames), frames)
        if real_clip is None:  # shorter than a clip: dropped on both sides, as StyleGAN-V drops it
            return
        real_i3d = i3d_features(self.networks.i3d, real_clip)
        self._i3d["real"].append(real_i3d)
        if ground_truth_only:
            self._i3d["fake"].append(real_i3d)
            return
        fake_clip = fvd_clip(fake, 0, frames)
        assert fake_clip is not None  # both videos were cut to the same length
        self._i3d["fake"].append(i3d_features(self.networks.i3d, fake_clip))

    def _faces(self, frames: np.ndarray) -> VideoFaces:
        assert self.networks.dlib is not None
        crops = face_crops(frames, dlib_faces.CROP_SIZE)
        return self.networks.dlib.video(crops, descriptors=self.config.identity_network == "dlib")

    def add(self, clip: EvalClip, generated: np.ndarray | None) -> ClipScores:
        """Score one clip; `generated=None` scores the ground truth against itself."""
        count = clip.frames.shape[0] if generated is None else min(clip.frames.shape[0], generated.shape[0])
        real = clip.frames[:count]
        fake = real if generated is None else generated[:count]
        nets = self.networks

        with self.timed("fid"):
            real_features = inception_features(nets.inception, real)
            self._inception["real"].append(real_features)
            self._inception["fake"].append(
                real_features if generated is None else inception_features(nets.inception, fake)
            )
        with self.timed("fvd"):
            self._fvd(clip.clip_id, real, fake, generated is None)
        with self.timed("sync"):
            gt_sync = self._sync(real, clip.audio)
            sync = gt_sync if generated is None else self._sync(fake, clip.audio)
        real_faces = fake_faces = None
        if nets.dlib is not None:
            with self.timed("dlib_faces"):
                real_faces = self._faces(real)
                fake_faces = real_faces if generated is None else self._faces(fake)
        with self.timed("csim_acd"):
            if real_faces is not None and fake_faces is not None and self.config.identity_network == "dlib":
                real_emb, fake_emb = real_faces.descriptors, fake_faces.descriptors
            else:
                real_emb = identity_embeddings(nets.arcface, face_crops(real, FACE_SIZE))
                fake_emb = (
                    real_emb
                    if generated is None
                    else identity_embeddings(nets.arcface, face_crops(fake, FACE_SIZE))
                )
            csim, acd, gt_csim = identity_scores(real_emb, fake_emb)
            scores = ClipScores(
                clip_id=clip.clip_id,
                identity=clip.identity,
                frames=count,
                sync_offset=sync[0],
                sync_c=sync[1],
                sync_d=sync[2],
                csim=csim,
                acd=acd,
                gt_sync_offset=gt_sync[0],
                gt_sync_c=gt_sync[1],
                gt_sync_d=gt_sync[2],
                gt_csim=gt_csim,
            )
        if real_faces is not None and fake_faces is not None:
            scores = replace(scores, face_rate=fake_faces.rate, gt_face_rate=real_faces.rate)
            if self.config.landmarks:
                with self.timed("landmarks"):
                    real_r = landmark_audio_correlation(
                        real_faces.landmarks, clip.audio, SAMPLE_RATE, clip.fps
                    )
                    fake_r = (
                        real_r
                        if generated is None
                        else landmark_audio_correlation(
                            fake_faces.landmarks, clip.audio, SAMPLE_RATE, clip.fps
                        )
                    )
                    scores = replace(
                        scores,
                        lmd=lmd(fake_faces.landmarks, real_faces.landmarks),
                        lmk_mouth_audio_r=fake_r,
                        gt_lmk_mouth_audio_r=real_r,
                    )
        if nets.mouth is not None:
            with self.timed("mouth"):
                real_r = nets.mouth.audio_correlation(real, clip.audio, SAMPLE_RATE, clip.fps)
                fake_r = (
                    real_r
                    if generated is None
                    else nets.mouth.audio_correlation(fake, clip.audio, SAMPLE_RATE, clip.fps)
                )
            scores = replace(scores, mouth_audio_r=fake_r, gt_mouth_audio_r=real_r)
        self.clips.append(scores)
        return scores

    @staticmethod
    def _frechet(features: dict[str, list[np.ndarray]], ddof: int) -> float:
        """Fréchet distance of pooled features; NaN when either side has fewer than 2 vectors.

        `ddof`: 1 for FID (clean-fid's np.cov), 0 for FVD (StyleGAN-V's covariance / N).
        """
        if sum(len(f) for f in features["real"]) < 2:  # both sides hold the same number of vectors
            return float("nan")
        real, fake = np.concatenate(features["real"]), np.concatenate(features["fake"])
        return frechet_distance(*feature_statistics(real, ddof), *feature_statistics(fake, ddof))

    def metrics(self) -> dict[str, float]:
        """Split-level numbers: Fréchet distances over pooled features, means (median offsets) over clips.

        Scores that need a detected face (dlib) are averaged over the clips where they exist.
        """

        def mean(field: str) -> float:
            values = np.array([getattr(c, field) for c in self.clips], dtype=np.float64)
            finite = values[np.isfinite(values)]
            if field in _FACE_DEPENDENT and len(finite):
                return float(finite.mean())
            return float(values.mean())

        def median(field: str) -> float:
            return float(np.median([getattr(c, field) for c in self.clips]))

        with self.timed("frechet"):  # once per split: two 2048-d eigendecompositions dominate
            fid, fvd = self._frechet(self._inception, ddof=1), self._frechet(self._i3d, ddof=0)
        return {
            "fid": fid,
            "fvd": fvd,
            "sync_c": mean("sync_c"),
            "sync_d": mean("sync_d"),
            "sync_offset": median("sync_offset"),
            "csim": mean("csim"),
            "acd": mean("acd"),
            "gt_sync_c": mean("gt_sync_c"),
            "gt_sync_d": mean("gt_sync_d"),
            "gt_sync_offset": median("gt_sync_offset"),
            "gt_csim": mean("gt_csim"),
            "mouth_audio_r": mean("mouth_audio_r"),
            "gt_mouth_audio_r": mean("gt_mouth_audio_r"),
            "lmd": mean("lmd"),
            "lmk_mouth_audio_r": mean("lmk_mouth_audio_r"),
            "gt_lmk_mouth_audio_r": mean("gt_lmk_mouth_audio_r"),
            "face_rate": mean("face_rate"),
            "gt_face_rate": mean("gt_face_rate"),
        }

    def fvd_clips(self) -> int:
        return sum(len(f) for f in self._i3d["real"])

    def seconds_per_clip(self) -> dict[str, float]:
        return {metric: total / max(1, len(self.clips)) for metric, total in self.seconds.items()}
