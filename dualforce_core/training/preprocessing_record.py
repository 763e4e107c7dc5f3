"""The preprocessing record of a training run (`dualforce_core.preprocessing`), built from what it read."""

from __future__ import annotations

import json

from dualforce_core.config import DualForceConfig
from dualforce_core.data.struct_stats import load_struct_stats
from dualforce_core.data.training_dataset import TrainingDataset
from dualforce_core.preprocessing import AudioRecord, LatentNormalisation, Preprocessing, StructNormalisation
from dualforce_core.timeline import SAMPLE_RATE, SPATIAL_STRIDE
from dualforce_core.weights import MissingWeightsError, WeightsRegistry


def _latent_normalisation(config: DualForceConfig, dataset: TrainingDataset) -> LatentNormalisation | None:
    """The VAE config's latent statistics (only its JSON is read: a training node needs no VAE weights)."""
    try:
        vae_dir = WeightsRegistry.from_config(config.weights).path("wan_vae")
        vae_config = json.loads((vae_dir / "config.json").read_text())
    except (MissingWeightsError, OSError, ValueError):
        return None
    return LatentNormalisation(
        extractor_ids=dataset.extractor_ids("video_latents"),
        latents_mean=[float(v) for v in vae_config["latents_mean"]],
        latents_std=[float(v) for v in vae_config["latents_std"]],
    )


def build_preprocessing(config: DualForceConfig, dataset: TrainingDataset) -> Preprocessing:
    """The record of the data this run trained on; the size is the latents' (not a config default)."""
    stats = load_struct_stats(dataset.dataset)
    data = config.data
    return Preprocessing(
        dataset=dataset.dataset,
        size=SPATIAL_STRIDE * int(dataset.items[0].latent_shape[-1]),
        fps=data.fps,
        sample_rate=SAMPLE_RATE,
        crop_mode=data.crop_mode,
        face_scale=data.face_scale,
        align=data.curation.align if data.crop_mode == "track" else None,
        struct=StructNormalisation(
            dataset=dataset.dataset,
            extractor_ids=dataset.extractor_ids("struct_features"),
            mean=[float(v) for v in dataset.struct_mean],
            std=[float(v) for v in dataset.struct_std],
            table_version=stats.table_version,
        ),
        latents=_latent_normalisation(config, dataset),
        audio=AudioRecord(
            extractor_ids=dataset.extractor_ids("audio_features"),
            layers=config.model.audio_layers,
            dim=config.model.audio_dim,
        ),
    )
