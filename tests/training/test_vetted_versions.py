"""Training reads exactly the Lance versions the training set recorded, the ones its blocking checks vetted."""

from __future__ import annotations

from pathlib import Path

from dualforce_core.config import config_dir, load_config
from dualforce_core.data.lance_store import table_version
from dualforce_core.data.training_dataset import TrainingDataset
from dualforce_core.data.training_set import build_training_set, manifest_path
from dualforce_core.training.trainer import Trainer
from tests.training.feature_tables import write_feature_tables

TINY = str(config_dir() / "train" / "tiny.yaml")


def test_rows_appended_after_the_checks_are_not_trained_on(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=2)
    vetted = build_training_set("ds").versions
    write_feature_tables("ds", num_clips=3, first_index=5)  # appended after the checks: new versions
    assert all((table_version(name) or 0) > version for name, version in vetted.items())
    config = load_config(TINY, ["train.mlflow=false"])
    trainer = Trainer(config, "ds", tmp_path / "run", training_set=manifest_path("ds"))
    try:
        assert len(trainer.dataset) == 2
        assert trainer.progress.lance_versions == vetted
    finally:
        trainer.close()
    assert len(TrainingDataset("ds", config.model)) == 5  # without the manifest: each table's latest
