"""One small ingested synthetic dataset and stand-in weights, shared by every evaluation test.

Six 0.72-second 64 px clips of three identities (two clips each), ingested as 17-frame clips (one
16-frame I3D clip each, twelve SyncNet windows). The data root is made once per session; each test
points DUALFORCE_HOME at it and writes reports of its own name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from dualforce_core.config import DualForceConfig, load_config
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import init_random

DATASET = "talk"
METRIC_WEIGHTS = ("inception", "i3d", "syncnet", "arcface")
DATA_OVERRIDES = ["data.clip_frames=17", "data.clip_stride=17", "data.size=64"]


@pytest.fixture(scope="session")
def eval_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("eval_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUALFORCE_HOME", str(home))
        src = home / "raw" / DATASET
        generate_dataset(src, clips=6, seed=0, seconds=0.72, size=64, identities=3)
        ingest_dataset(DATASET, src, DataConfig(clip_frames=17, clip_stride=17, size=64), progress=False)
        init_random(home / "weights", [*METRIC_WEIGHTS, "wan_vae", "hubert", "liveportrait_motion"], seed=0)
    return home


@pytest.fixture(autouse=True)
def dualforce_home(eval_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DUALFORCE_HOME", str(eval_home))
    monkeypatch.delenv("DUALFORCE_WEIGHTS", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only contend for the shared CPUs
    yield eval_home
    torch.set_num_threads(threads)


@pytest.fixture
def config() -> DualForceConfig:
    return load_config(None, DATA_OVERRIDES)
