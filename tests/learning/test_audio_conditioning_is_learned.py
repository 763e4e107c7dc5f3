"""The CI guard of learning: a tiny model overfitted on a few synthetic clips makes the mouth follow the audio.

Real code paths end to end: synthetic mp4s → ingest → HuBERT stand-in features, the `sidecar` structure
(the renderer's own jaw, pose and blinks) and latents → `train` → the exported checkpoint with its
preprocessing record → the streaming generator → the jaw opening of the generated structure stream,
correlated with the driving audio's envelope. The random stand-in VAE carries no face, so this guard
reads the structure tower's mouth; `bench/lipsync.py` measures the pixels with the fitted VAE.

What it proves: with its own audio the generated mouth follows that audio; fed another clip's audio the
mouth follows the new audio, not the portrait's own. Measured (this seed, 2 vCPU): own r 0.75, driving
0.57, portrait's own 0.03, structure loss gap +64 %. An audio-blind model scores r ≈ 0: for 24-frame
series chance r has σ ≈ 1/√23 ≈ 0.21, so the mean of 4 clips has σ ≈ 0.1; the thresholds sit 3–4 σ
above chance and 0.25–0.35 below the measured values, wide enough for float differences between
machines to move the trajectory without flipping the verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dualforce_core.config import config_dir, load_config
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.data.split import dataset_clips
from dualforce_core.evaluation.lipsync import conditional_loss_gap, mouth_sync
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.struct import extract_struct_features
from dualforce_core.models import DualForceModel
from dualforce_core.sample_data import generate_dataset
from dualforce_core.training.trainer import train
from dualforce_core.weights import init_random

DATASET = "overfit"
STEPS = 300


@pytest.mark.slow
def test_generated_mouth_follows_the_driving_audio(dualforce_home: Path) -> None:
    torch.set_num_threads(1)
    src = dualforce_home / "raw" / DATASET
    generate_dataset(src, clips=4, seed=3, seconds=1.0, size=64, identities=4)
    init_random(dualforce_home / "weights", ("wan_vae", "hubert"), seed=0)
    config = load_config(
        str(config_dir() / "train" / "tiny.yaml"),
        [
            "data.size=64",
            "data.clip_frames=25",
            "data.clip_stride=25",
            "data.video_preset=ultrafast",
            "data.struct_extractor=sidecar",
            "model.struct_tokens_per_frame=3",
            "train.split=all",
            "train.batch_size=4",
            f"train.max_steps={STEPS}",
            "train.lr=1e-3",
            "train.warmup_steps=20",
            "train.ema_decay=0.9",
            "train.audio_dropout=0.0",
            "train.loss_weights.lipsync=0.5",
            "train.checkpoint_every=0",
            "train.mlflow=false",
        ],
    )
    ingest_dataset(DATASET, src, config.data, progress=False)
    for extract in (extract_audio_features, extract_struct_features, extract_video_latents):
        extract(DATASET, config, progress=False)
    result = train(config, DATASET, dualforce_home / "run")
    assert result.final_dir is not None
    clips = dataset_clips(DATASET, config.eval)
    assert len(clips) == 4 and len({c.identity for c in clips}) == 4

    sync = mouth_sync(result.final_dir, clips, config, reader=None).summary()
    own, driving, portrait = (
        sync[k]["mean"]
        for k in ("structure_true_r", "structure_swapped_r_driving", "structure_swapped_r_own")
    )
    assert own > 0.4, sync
    assert driving > 0.3 and driving > portrait + 0.25, sync

    gap = conditional_loss_gap(
        DualForceModel.from_pretrained(result.final_dir),
        DATASET,
        [c.clip_id for c in clips],
        [c.identity for c in clips],
        config,
        draws=4,
    )
    assert gap["struct"].mean > 0.2 and gap["struct"].low > 0, gap
    assert np.isfinite(gap["video"].mean)
