"""The held-out split is by identity: deterministic, disjoint, never empty when it can be non-empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualforce_core.config import DualForceConfig
from dualforce_core.data.split import assign_splits, clip_identity, dataset_clips, split_clips
from dualforce_core.errors import UserError
from dualforce_core.evaluation.config import EvalConfig
from tests.evaluation.conftest import DATASET


def test_assignment_is_a_function_of_the_identity_alone() -> None:
    many = [f"person{i}" for i in range(1000)]
    splits = assign_splits(many, 0.2)
    assert splits == assign_splits(reversed(many), 0.2)
    assert 0.16 < sum(s == "test" for s in splits.values()) / len(many) < 0.24
    fewer = assign_splits(many[:500], 0.2)
    assert all(fewer[key] == splits[key] for key in fewer)  # adding people moves nobody


@pytest.mark.parametrize("fraction", [0.001, 0.999])
def test_two_identities_always_give_a_train_and_a_test_identity(fraction: float) -> None:
    for pair in (["a", "b"], ["x", "y"], ["sidecar:0", "sidecar:1"]):
        assert sorted(assign_splits(pair, fraction).values()) == ["test", "train"]


def test_ingested_clips_split_by_sidecar_identity_without_overlap(config: DualForceConfig) -> None:
    clips = {clip.clip_id: clip.identity for clip in dataset_clips(DATASET, config.eval)}
    assert sorted(set(clips.values())) == ["sidecar:0", "sidecar:1", "sidecar:2"]
    train = split_clips(DATASET, "train", config.eval)
    test = split_clips(DATASET, "test", config.eval)
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == sorted(split_clips(DATASET, "all", config.eval)) == sorted(clips)
    assert not {clips[c] for c in train} & {clips[c] for c in test}
    assert test == split_clips(DATASET, "test", config.eval)


def test_source_file_identity_makes_every_file_a_person(config: DualForceConfig) -> None:
    by_file = EvalConfig(identity="source_file")
    identities = {clip.identity for clip in dataset_clips(DATASET, by_file)}
    assert len(identities) == 6 and all(key.startswith("file:") for key in identities)


def test_source_folder_identity_reads_the_folder_at_the_configured_depth(tmp_path: Path) -> None:
    row: dict[str, str | None] = {"clip_id": "c", "source_path": "/data/vox/id10001/vidA/00001.mp4"}
    row |= {"source_hash": "h", "sidecar_path": None}
    assert clip_identity(row, EvalConfig(identity="source_folder"), {}) == "folder:vidA"
    deep = EvalConfig(identity="source_folder", identity_folder_depth=2)
    assert clip_identity(row, deep, {}) == "folder:id10001"
    with pytest.raises(UserError, match="above the root"):
        clip_identity(row, EvalConfig(identity="source_folder", identity_folder_depth=9), {})
    sidecar = tmp_path / "00001.json"
    sidecar.write_text(json.dumps({"identity": 7}))
    assert clip_identity({**row, "sidecar_path": str(sidecar)}, EvalConfig(), {}) == "sidecar:7"
    assert clip_identity(row, EvalConfig(), {}) == "file:h"  # auto without a sidecar
    with pytest.raises(UserError, match="no readable sidecar"):
        clip_identity(row, EvalConfig(identity="sidecar"), {})


def test_unknown_dataset_and_split_are_user_errors(config: DualForceConfig) -> None:
    with pytest.raises(UserError, match="dualforce ingest --dataset nobody"):
        split_clips("nobody", "test", config.eval)
    with pytest.raises(UserError, match="split must be one of"):
        split_clips(DATASET, "validation", config.eval)
    with pytest.raises(UserError, match="dataset name"):
        split_clips("x' OR '1'='1", "test", config.eval)
