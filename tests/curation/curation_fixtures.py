"""Types and settings shared by the curation tests (the fixtures themselves live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualforce_core.curation import CurationConfig
from dualforce_core.curation.corpus import Truth

TEST_CONFIG = CurationConfig(min_frames=16)
"""Defaults (HOG, upsample 1, detection every 5 frames, correlation tracker, 256-px crops) with clips of
16 frames or more, so the corpus's short shot stays short."""


@dataclass
class Corpus:
    path: Path
    truth: Truth
    photo_embeddings: dict[str, np.ndarray]
