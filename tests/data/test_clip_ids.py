from __future__ import annotations

import shutil
from pathlib import Path

from dualforce_core.data import lance_store
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from tests.data.ingest_fixtures import write_video


def test_same_file_in_two_datasets_keeps_both_sets_of_clips(tmp_path: Path) -> None:
    config = DataConfig(size=32, clip_frames=9, clip_stride=8)
    write_video(tmp_path / "a" / "talk.mp4", 20)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    ingest_dataset("first", tmp_path / "a", config, progress=False)
    ingest_dataset("second", tmp_path / "b", config, progress=False)
    rows = lance_store.read_rows("clips", ["clip_id", "dataset"]).to_pylist()
    first = {r["clip_id"] for r in rows if r["dataset"] == "first"}
    second = {r["clip_id"] for r in rows if r["dataset"] == "second"}
    assert len(first) == len(second) == 2
    assert not first & second
