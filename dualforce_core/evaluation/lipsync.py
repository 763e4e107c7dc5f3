"""Does a trained model use the audio? Two measurements on held-out identities.

1. **Conditional loss gap.** The flow-matching loss of each held-out clip with its own audio and with
   another clip's audio, under identical σ and noise draws; the gap `(swapped − own) / own` per modality
   is averaged over draws per clip, and its mean over clips gets a 95 % t-interval. A model that
   ignores the audio has a gap of exactly 0.
2. **Mouth follows audio.** The streaming sampler generates each held-out clip from its first frame
   (and, on synthetic data, the first frame's recorded motion) with (a) its own audio, (b) another
   clip's audio; the mouth opening read from the decoded pixels (`metrics.mouth`) is correlated with
   the driving audio's envelope, and in (b) also with the portrait's own audio, which the mouth should
   no longer follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.data.training_dataset import TrainingDataset, collate
from dualforce_core.evaluation.clips import EvalClip, load_clip
from dualforce_core.evaluation.split import SplitClip
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.losses import DualForceLoss
from dualforce_core.metrics.mouth import MouthReader
from dualforce_core.models import DualForceModel
from dualforce_core.preprocessing import Preprocessing
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.training.config import LossWeights
from dualforce_core.training.trainer import forward_loss

SAMPLE_RATE = 16000
MODALITIES = ("video", "struct")


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Interval:
        """Mean and its 95 % Student-t interval (n − 1 degrees of freedom)."""
        x = np.asarray(values, np.float64)
        if len(x) < 2:
            return cls(float(x.mean()) if len(x) else float("nan"), float("nan"), float("nan"), len(x))
        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
        return cls(float(x.mean()), float(x.mean()) - half, float(x.mean()) + half, len(x))

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}] (n={self.n})"


def swap_partner(index: int, identities: Sequence[str]) -> int:
    """The next clip (cyclically) showing another identity; the clip itself when all share one."""
    n = len(identities)
    for step in range(1, n):
        j = (index + step) % n
        if identities[j] != identities[index]:
            return j
    return index


@torch.no_grad()
def conditional_loss_gap(
    model: DualForceModel,
    dataset: str,
    clip_ids: list[str],
    identities: list[str],
    config: DualForceConfig,
    draws: int = 8,
    seed: int = 0,
) -> dict[str, Interval]:
    """Per modality: the relative loss increase when a held-out clip is given another clip's audio."""
    data = TrainingDataset(dataset, config.model, None, clip_ids, "heldout")
    order = {item.clip_id: i for i, item in enumerate(data.items)}
    items = [data[order[c]] for c in clip_ids]
    eval_config = config.model_copy(
        update={"train": config.train.model_copy(update={"audio_dropout": 0.0, "struct_dropout": 0.0})}
    )
    loss_fn = DualForceLoss(
        LossWeights(video=1.0, struct=1.0, lipsync=0.0, flame=0.0),
        struct_tokens=config.model.struct_tokens_per_frame,
        struct_token_dim=model.projector.token_dim,
        audio_dim=config.model.audio_dim,
    )
    sampler = SigmaSampler(config.diffusion)
    model.eval()
    gaps: dict[str, list[float]] = {m: [] for m in MODALITIES}
    for i, item in enumerate(items):
        partner = items[swap_partner(i, identities)]
        swapped = {**item, "audio": partner["audio"][: item["audio"].shape[0]]}
        per_draw: dict[str, list[float]] = {m: [] for m in MODALITIES}
        for d in range(draws):
            losses = []
            for batch in (item, swapped):
                generator = torch.Generator().manual_seed(seed * 100003 + i * 1009 + d)
                out, _ = forward_loss(model, loss_fn, collate([batch]), sampler, generator, eval_config)
                losses.append(out.components)
            for m in MODALITIES:
                per_draw[m].append((losses[1][m] - losses[0][m]) / max(losses[0][m], 1e-12))
        for m in MODALITIES:
            gaps[m].append(float(np.mean(per_draw[m])))
    return {m: Interval.of(v) for m, v in gaps.items()}


def first_frame_motion(clip_id: str) -> np.ndarray | None:
    """The clip's recorded frame-0 motion (raw 70-d) from `struct_features`; None when it has none."""
    rows = read_rows("struct_features", ["motion", "shape"], f"clip_id = '{clip_id}'").to_pylist()
    if not rows:
        return None
    return decode_tensor(rows[0]["motion"], rows[0]["shape"], "float32").numpy()[:1]


def generate(
    generator: StreamingGenerator, portrait_clip: EvalClip, audio: np.ndarray, motion: np.ndarray | None
) -> np.ndarray:
    chunks = generator.stream(portrait_clip.reference, [audio], reference_motion=motion)
    return np.concatenate([chunk.frames for chunk in chunks])[: len(portrait_clip.frames)]


@dataclass
class MouthSyncResult:
    true_r: list[float]  # own audio
    swapped_r_driving: list[float]  # another clip's audio, against that audio
    swapped_r_own: list[float]  # another clip's audio, against the portrait's own audio
    ground_truth_r: list[float]  # the real frames against their audio (the ceiling)
    samples: list[tuple[str, np.ndarray]]  # (clip id, generated frames) of the first clips

    def summary(self) -> dict[str, Any]:
        return {
            k: asdict(Interval.of(v))
            for k, v in (
                ("true_r", self.true_r),
                ("swapped_r_driving", self.swapped_r_driving),
                ("swapped_r_own", self.swapped_r_own),
                ("ground_truth_r", self.ground_truth_r),
            )
        }


def mouth_sync(
    checkpoint: Path,
    clips: list[SplitClip],
    config: DualForceConfig,
    reader: MouthReader,
    swap: bool = True,
    keep_samples: int = 2,
) -> MouthSyncResult:
    """Generate each clip with its own (and, with `swap`, another identity's) audio and read the mouth."""
    record = Preprocessing.load(checkpoint)
    model = DualForceModel.from_pretrained(checkpoint).eval()
    generator = StreamingGenerator.from_config(config, model, preprocessing=record)
    loaded = [load_clip(c) for c in clips]
    identities = [c.identity for c in loaded]
    result = MouthSyncResult([], [], [], [], [])
    for i, clip in enumerate(loaded):
        motion = first_frame_motion(clip.clip_id) if record.struct.uses_sidecar else None
        frames = generate(generator, clip, clip.audio, motion)
        result.true_r.append(reader.audio_correlation(frames, clip.audio, SAMPLE_RATE, clip.fps))
        result.ground_truth_r.append(reader.audio_correlation(clip.frames, clip.audio, SAMPLE_RATE, clip.fps))
        if len(result.samples) < keep_samples:
            result.samples.append((clip.clip_id, frames))
        j = swap_partner(i, identities)
        if swap and j != i:
            driving = loaded[j].audio[: len(clip.audio)]
            swapped = generate(generator, clip, driving, motion)
            result.swapped_r_driving.append(reader.audio_correlation(swapped, driving, SAMPLE_RATE, clip.fps))
            result.swapped_r_own.append(reader.audio_correlation(swapped, clip.audio, SAMPLE_RATE, clip.fps))
    return result
