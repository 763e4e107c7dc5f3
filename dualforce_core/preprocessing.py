"""The preprocessing record saved with every trained model: what inference must do to match training.

A model's weights mean nothing without the transforms its inputs went through: the structure
normalisation statistics of its dataset, the latent normalisation of the VAE that made its latents, the
HuBERT that made its audio features, the resolution, frame rate and crop of its clips. Training writes
them to `preprocessing.json` next to `config.json`; `generate`, `evaluate`, `serve` and the Dagster assets
read them from there, so a checkpoint copied to another machine (with another `DUALFORCE_HOME`, other
datasets, other config defaults) generates the same video. A checkpoint without the record is refused
with one clear error rather than fed inputs it never saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dualforce_core.curation.config import AlignConfig
from dualforce_core.errors import UserError

PREPROCESSING_FILE = "preprocessing.json"
FORMAT_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StructNormalisation(_Record):
    """Per-dimension mean/std of the 70-d motion over the training dataset, and who extracted it."""

    dataset: str
    extractor_ids: list[str]
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)
    table_version: int | None = None

    @property
    def uses_sidecar(self) -> bool:
        """Trained on synthetic ground-truth motion: no network can give a portrait's motion in that space."""
        return bool(self.extractor_ids) and all(e.startswith("struct:sidecar") for e in self.extractor_ids)

    def normalise(self, motion: np.ndarray) -> np.ndarray:
        return (np.asarray(motion, np.float64) - np.asarray(self.mean)) / np.asarray(self.std)


class LatentNormalisation(_Record):
    """The VAE's per-channel `(z - mean) / std` that the training latents went through."""

    extractor_ids: list[str]
    latents_mean: list[float]
    latents_std: list[float]


class AudioRecord(_Record):
    extractor_ids: list[str]
    layers: int
    dim: int


class Preprocessing(_Record):
    format_version: int = FORMAT_VERSION
    dataset: str
    size: int
    fps: int
    sample_rate: int
    crop_mode: str
    face_scale: float
    align: AlignConfig | None = None
    """crop_mode=track: the `data.curation.align` framing of the training clips, which `generate` and
    `serve` repeat on the portrait (`align_portrait`). None for every other crop mode, and in records
    written before it existed (a track record without it falls back to `data.curation.align`)."""
    struct: StructNormalisation
    latents: LatentNormalisation | None  # None: no VAE config was readable at training time
    audio: AudioRecord

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / PREPROCESSING_FILE
        data = self.model_dump(mode="json")
        if data["align"] is None:  # records of the other crop modes stay as older DualForce wrote them
            del data["align"]
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Preprocessing:
        path = Path(directory) / PREPROCESSING_FILE
        if not path.is_file():
            raise UserError(
                f"checkpoint {directory} has no {PREPROCESSING_FILE}, the record of how its training inputs "
                "were normalised (structure statistics, latent normalisation, audio features, size): without it "
                "inference would feed the model inputs it never saw. Export checkpoints with `dualforce train` "
                "(it writes the record), or copy the file from the run's final/ folder"
            )
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            record = cls.model_validate(data)
        except (ValueError, ValidationError) as err:
            raise UserError(f"{path} is not a valid preprocessing record: {err}") from None
        if record.format_version != FORMAT_VERSION:
            raise UserError(
                f"{path} has format_version {record.format_version}; this DualForce reads {FORMAT_VERSION}"
            )
        return record

    @classmethod
    def exists(cls, directory: str | Path) -> bool:
        return (Path(directory) / PREPROCESSING_FILE).is_file()
