"""A preprocessing record for checkpoints that tests save directly (not through `dualforce train`)."""

from __future__ import annotations

from pathlib import Path

from dualforce_core.motion_layout import MOTION_DIM
from dualforce_core.preprocessing import AudioRecord, Preprocessing, StructNormalisation


def write_identity_record(checkpoint: Path, size: int, audio_layers: int = 3, audio_dim: int = 32) -> Path:
    """Identity structure normalisation (mean 0, std 1), the VAE's own latent statistics, `size` px."""
    record = Preprocessing(
        dataset="test",
        size=size,
        fps=25,
        sample_rate=16000,
        crop_mode="center",
        face_scale=1.8,
        struct=StructNormalisation(
            dataset="test", extractor_ids=[], mean=[0.0] * MOTION_DIM, std=[1.0] * MOTION_DIM
        ),
        latents=None,
        audio=AudioRecord(extractor_ids=[], layers=audio_layers, dim=audio_dim),
    )
    record.save(checkpoint)
    return checkpoint
