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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.split import SplitClip
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.data.training_dataset import TrainingDataset, collate
from dualforce_core.evaluation.clips import EvalClip, load_clip
from dualforce_core.features.struct_sidecar import mouth_open_from_motion
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.losses import DualForceLoss
from dualforce_core.metrics.mouth import MouthReader, audio_envelope, pearson
from dualforce_core.models import DualForceModel
from dualforce_core.preprocessing import Preprocessing
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.timeline import SAMPLE_RATE
from dualforce_core.training.config import LossWeights
from dualforce_core.training.objective import forward_loss

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


@dataclass
class Generated:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    mouth_from_structure: np.ndarray | None  # [T] jaw opening of the generated structure (sidecar layout)


def generate(
    generator: StreamingGenerator, portrait_clip: EvalClip, audio: np.ndarray, motion: np.ndarray | None
) -> Generated:
    chunks = list(generator.stream(portrait_clip.reference, [audio], reference_motion=motion))
    count = len(portrait_clip.frames)
    frames = np.concatenate([chunk.frames for chunk in chunks])[:count]
    record = generator.preprocessing
    mouth = None
    if record is not None and record.struct.uses_sidecar:
        tokens = torch.cat([chunk.struct.float().cpu() for chunk in chunks], dim=1)
        normalised = generator.model.projector.unpack(tokens)[0].double().numpy()
        raw = normalised * np.asarray(record.struct.std) + np.asarray(record.struct.mean)
        mouth = mouth_open_from_motion(raw)[:count]
    return Generated(frames, mouth)


def structure_audio_correlation(generated: Generated, audio: np.ndarray, fps: int) -> float:
    """r between the generated structure's jaw opening and the audio envelope (frame 0 left out)."""
    assert generated.mouth_from_structure is not None
    envelope = audio_envelope(audio, SAMPLE_RATE, fps, len(generated.mouth_from_structure))
    return pearson(generated.mouth_from_structure[1:], envelope[1:])


@dataclass
class MouthSyncResult:
    """Per clip r; `*_r` read the mouth from pixels, `structure_*_r` from the generated structure stream."""

    true_r: list[float] = field(default_factory=list)  # own audio
    swapped_r_driving: list[float] = field(default_factory=list)  # another clip's audio, against it
    swapped_r_own: list[float] = field(default_factory=list)  # another clip's audio, against the own audio
    ground_truth_r: list[float] = field(default_factory=list)  # the real frames against their audio
    structure_true_r: list[float] = field(default_factory=list)
    structure_swapped_r_driving: list[float] = field(default_factory=list)
    structure_swapped_r_own: list[float] = field(default_factory=list)
    samples: list[tuple[str, np.ndarray]] = field(
        default_factory=list
    )  # (clip id, frames) of the first clips

    def summary(self) -> dict[str, Any]:
        return {
            name: asdict(Interval.of(values))
            for name, values in vars(self).items()
            if name != "samples" and values
        }


def mouth_sync(
    checkpoint: Path,
    clips: list[SplitClip],
    config: DualForceConfig,
    reader: MouthReader | None,
    swap: bool = True,
    keep_samples: int = 2,
) -> MouthSyncResult:
    """Generate each clip with its own (and, with `swap`, another identity's) audio and read the mouth
    (from pixels with `reader`; from the generated structure when the model was trained on sidecar motion)."""
    record = Preprocessing.load(checkpoint)
    model = DualForceModel.from_pretrained(checkpoint).eval()
    generator = StreamingGenerator.from_config(config, model, preprocessing=record)
    loaded = [load_clip(c) for c in clips]
    identities = [c.identity for c in loaded]
    result = MouthSyncResult()
    for i, clip in enumerate(loaded):
        motion = first_frame_motion(clip.clip_id) if record.struct.uses_sidecar else None
        own = generate(generator, clip, clip.audio, motion)
        if reader is not None:
            result.true_r.append(reader.audio_correlation(own.frames, clip.audio, SAMPLE_RATE, clip.fps))
            result.ground_truth_r.append(
                reader.audio_correlation(clip.frames, clip.audio, SAMPLE_RATE, clip.fps)
            )
        if own.mouth_from_structure is not None:
            result.structure_true_r.append(structure_audio_correlation(own, clip.audio, clip.fps))
        if len(result.samples) < keep_samples:
            result.samples.append((clip.clip_id, own.frames))
        j = swap_partner(i, identities)
        if not swap or j == i:
            continue
        driving = loaded[j].audio[: len(clip.audio)]
        swapped = generate(generator, clip, driving, motion)
        if reader is not None:
            result.swapped_r_driving.append(
                reader.audio_correlation(swapped.frames, driving, SAMPLE_RATE, clip.fps)
            )
            result.swapped_r_own.append(
                reader.audio_correlation(swapped.frames, clip.audio, SAMPLE_RATE, clip.fps)
            )
        if swapped.mouth_from_structure is not None:
            result.structure_swapped_r_driving.append(structure_audio_correlation(swapped, driving, clip.fps))
            result.structure_swapped_r_own.append(structure_audio_correlation(swapped, clip.audio, clip.fps))
    return result
