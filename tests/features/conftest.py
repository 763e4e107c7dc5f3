"""Stand-in weights written once per session; a fresh config and clip writer per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core.config import DualForceConfig, load_config
from dualforce_core.weights import init_random
from tests.features.feature_fixtures import FEATURE_WEIGHTS, MakeClips, clip_writer


@pytest.fixture(scope="session")
def weights_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    init_random(root, FEATURE_WEIGHTS, seed=0)
    return root


@pytest.fixture
def config(weights_root: Path) -> DualForceConfig:
    return load_config(None, [f"weights.root={weights_root}", "data.feature_batch_size=2"])


@pytest.fixture
def make_clips(tmp_path: Path) -> MakeClips:
    return clip_writer(tmp_path)
