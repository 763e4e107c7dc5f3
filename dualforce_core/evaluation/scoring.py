"""Per-clip network passes and the split-level numbers: FID, FVD, Sync-C/D, CSIM and ACD.

Clips are scored one by one and only features are kept (Inception [T, 2048], I3D [n, 400] per clip),
so memory does not grow with the frames of a split. The ground truth is scored the same way as the
generated video: its Sync scores are the ceiling a generator can reach on this data, and its CSIM
(frames vs the first frame) is how much a real face drifts within a clip. With no generated video
(ground-truth-only mode) the ground truth stands in for it, so FID, FVD and ACD are 0 by construction:
a check of the pipeline, not of a model.
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
    acd,
    csim_from_embeddings,
    face_crops,
    feature_statistics,
    frechet_distance,
    i3d_features,
    identity_embeddings,
    inception_features,
    sync_scores,
    syncnet_distances,
    video_clips,
)
from dualforce_core.metrics.identity import FACE_SIZE
from dualforce_core.metrics.syncnet import CROP_SIZE
from dualforce_core.timeline import SAMPLE_RATE

HEADLINE = ("fid", "fvd", "sync_c", "sync_d", "csim", "acd")
"""The numbers every report leads with (logged to MLflow as `eval/<name>`)."""


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

    @contextmanager
    def timed(self, metric: str) -> Iterator[None]:
        """Adds the block's wall time to `seconds[metric]` (the report divides by the clip count)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[metric] += time.perf_counter() - start

    def _sync(self, frames: np.ndarray, audio: np.ndarray) -> tuple[int, float, float]:
        crops = face_crops(frames, CROP_SIZE)
        dists = syncnet_distances(self.networks.syncnet, crops, audio, self.config.sync_offsets)
        offset, confidence, distance = sync_scores(dists)
        return offset, confidence, distance

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
            real_clips, fake_clips = (video_clips(v, self.config.fvd_clip_frames) for v in (real, fake))
            if len(real_clips):
                real_i3d = i3d_features(nets.i3d, real_clips)
                self._i3d["real"].append(real_i3d)
                self._i3d["fake"].append(
                    real_i3d if generated is None else i3d_features(nets.i3d, fake_clips)
                )
        with self.timed("sync"):
            gt_sync = self._sync(real, clip.audio)
            sync = gt_sync if generated is None else self._sync(fake, clip.audio)
        with self.timed("csim_acd"):
            real_emb = identity_embeddings(nets.arcface, face_crops(real, FACE_SIZE))
            fake_emb = (
                real_emb
                if generated is None
                else identity_embeddings(nets.arcface, face_crops(fake, FACE_SIZE))
            )
            reference = real_emb[0]
            scores = ClipScores(
                clip_id=clip.clip_id,
                identity=clip.identity,
                frames=count,
                sync_offset=sync[0],
                sync_c=sync[1],
                sync_d=sync[2],
                csim=csim_from_embeddings(fake_emb, reference),
                acd=acd(fake_emb, real_emb),
                gt_sync_offset=gt_sync[0],
                gt_sync_c=gt_sync[1],
                gt_sync_d=gt_sync[2],
                gt_csim=csim_from_embeddings(real_emb, reference),
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
    def _frechet(features: dict[str, list[np.ndarray]]) -> float:
        """Fréchet distance of pooled features; NaN when either side has fewer than 2 vectors."""
        if sum(len(f) for f in features["real"]) < 2:  # both sides hold the same number of vectors
            return float("nan")
        real, fake = np.concatenate(features["real"]), np.concatenate(features["fake"])
        return frechet_distance(*feature_statistics(real), *feature_statistics(fake))

    def metrics(self) -> dict[str, float]:
        """Split-level numbers: Fréchet distances over pooled features, means (median offsets) over clips."""

        def mean(field: str) -> float:
            return float(np.mean([getattr(c, field) for c in self.clips]))

        def median(field: str) -> float:
            return float(np.median([getattr(c, field) for c in self.clips]))

        with self.timed("frechet"):  # once per split: two 2048-d eigendecompositions dominate
            fid, fvd = self._frechet(self._inception), self._frechet(self._i3d)
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
        }

    def fvd_clips(self) -> int:
        return sum(len(f) for f in self._i3d["real"])

    def seconds_per_clip(self) -> dict[str, float]:
        return {metric: total / max(1, len(self.clips)) for metric, total in self.seconds.items()}
