"""The trainer reads only the identity split's train clips, so evaluation's held-out people stay unseen."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from dualforce_core.config import DualForceConfig, config_dir, load_config
from dualforce_core.data.lance_store import upsert
from dualforce_core.data.split import split_clips
from dualforce_core.data.training_dataset import TrainingDataset
from dualforce_core.errors import UserError
from dualforce_core.training.checkpoint import META_FILE
from dualforce_core.training.trainer import Trainer
from tests.training.feature_tables import write_feature_tables

TINY = str(config_dir() / "train" / "tiny.yaml")


def write_clips_rows(dataset: str, clip_ids: list[str], identities: list[str]) -> None:
    """`clips` rows as ingest writes them; no sidecar, so each clip's identity is its source file hash."""
    n = len(clip_ids)
    upsert(
        "clips",
        pa.table(
            {
                "clip_id": clip_ids,
                "dataset": [dataset] * n,
                "source_path": [f"/raw/{person}.mp4" for person in identities],
                "source_hash": identities,
                "start_frame": pa.array([17 * i for i in range(n)], pa.int64()),
                "sidecar_path": pa.array([None] * n, pa.string()),
            }
        ),
    )


def tiny_config(*overrides: str) -> DualForceConfig:
    return load_config(TINY, ["train.mlflow=false", "train.max_steps=1", *overrides])


def trained_ids(trainer: Trainer) -> list[str]:
    return [item.clip_id for item in trainer.dataset.items]


def test_trainer_holds_exactly_the_train_split(tmp_path: Path) -> None:
    ids = write_feature_tables("ds", num_clips=6, flame=False)
    write_clips_rows("ds", ids, [f"person{i % 3}" for i in range(6)])
    config = tiny_config()
    train, test = split_clips("ds", "train", config.eval), split_clips("ds", "test", config.eval)
    assert train and test and sorted(train + test) == ids
    trainer = Trainer(config, "ds", tmp_path / "run")
    try:
        assert trained_ids(trainer) == sorted(train)
        assert not set(trained_ids(trainer)) & set(test)
        meta = json.loads((trainer.save_checkpoint() / META_FILE).read_text())
        assert (meta["split"], meta["split_clips"]) == ("train", len(train))
    finally:
        trainer.close()
    everything = Trainer(tiny_config("train.split=all"), "ds", tmp_path / "all")
    try:
        assert trained_ids(everything) == ids
    finally:
        everything.close()


def test_one_identity_or_no_clips_rows_trains_on_all_clips_with_a_note(tmp_path: Path) -> None:
    ids = write_feature_tables("solo", num_clips=2, flame=False)
    trainer = Trainer(tiny_config(), "solo", tmp_path / "bare")
    try:
        assert trained_ids(trainer) == ids
        assert any("no ingested clips rows" in note for note in trainer.notes)
    finally:
        trainer.close()
    write_clips_rows("solo", ids, ["me", "me"])
    trainer = Trainer(tiny_config(), "solo", tmp_path / "one")
    try:
        assert (trained_ids(trainer), trainer.dataset.split) == (ids, "all")
        assert any("one identity" in note for note in trainer.notes)
    finally:
        trainer.close()


def test_an_allow_list_without_featured_clips_is_a_user_error(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=2, flame=False)
    with pytest.raises(UserError, match="split 'train' of dataset 'ds' has none of its 2 clips"):
        TrainingDataset("ds", tiny_config().model, clip_ids=["elsewhere"], split="train")
