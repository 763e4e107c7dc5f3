"""A file cut again under a changed config replaces its earlier cut: no stale clip, no stale feature."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from dualforce_core import paths
from dualforce_core.data import lance_store, media, tables
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from tests.data.ingest_fixtures import write_video

CONFIG = DataConfig(size=32, clip_frames=9, clip_stride=8)


def _features_for(dataset: str) -> None:
    """One audio-feature row per clip of `dataset`, as an extractor would have written it."""
    ids = sorted(lance_store.existing_ids("clips", where=f"dataset = '{dataset}'"))
    rows = [
        {
            "clip_id": clip_id,
            "dataset": dataset,
            "extractor_id": "x",
            "features": b"\0" * 8,
            "shape": [2],
            "dtype": "float32",
            "num_layers": 1,
            "dim": 2,
        }
        for clip_id in ids
    ]
    lance_store.upsert(tables.AUDIO_FEATURES.name, pa.Table.from_pylist(rows, tables.AUDIO_FEATURES.schema))


def _clips(dataset: str) -> dict[str, bytes]:
    table = lance_store.read_rows("clips", ["clip_id", "video"], f"dataset = '{dataset}'")
    return dict(zip(table.column("clip_id").to_pylist(), table.column("video").to_pylist(), strict=True))


def _feature_ids(dataset: str) -> set[str]:
    return lance_store.existing_ids(tables.AUDIO_FEATURES.name, where=f"dataset = '{dataset}'")


@pytest.fixture
def two_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Datasets `a` (two 40-frame files) and `b` (one), ingested with CONFIG, each clip with features."""
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    for name, width in (("one", 96), ("two", 80)):  # different content: a copy would be a `duplicate` reject
        write_video(tmp_path / "a" / f"{name}.mp4", 40, width=width)
    write_video(tmp_path / "b" / "other.mp4", 40, width=112)
    for dataset in ("a", "b"):
        ingest_dataset(dataset, tmp_path / dataset, CONFIG, progress=False)
        _features_for(dataset)
    return tmp_path


def test_changed_codec_recuts_every_clip_and_drops_its_features(two_datasets: Path) -> None:
    before, b_clips, b_features = _clips("a"), _clips("b"), _feature_ids("b")
    assert len(before) == 8 and _feature_ids("a") == set(before)
    report = ingest_dataset("a", two_datasets / "a", CONFIG.model_copy(update={"video_codec": "h264"}))
    after = _clips("a")
    assert set(after) == set(before)  # same ids (ids do not name the config) ...
    assert all(after[i] != before[i] for i in after)  # ... with the new cut's blobs
    assert all(media.decode_video(blob).shape == (9, 32, 32, 3) for blob in after.values())
    assert _feature_ids("a") == set()  # features of the old cut would look done: gone, extraction redoes them
    assert (report.clips_recut, report.clips_dropped, report.clips_written) == (8, 0, 8)
    assert "8 earlier clips replaced" in report.summary()
    assert _clips("b") == b_clips and _feature_ids("b") == b_features  # another dataset is untouched


def test_changed_stride_deletes_the_clips_it_no_longer_makes(two_datasets: Path) -> None:
    before = _clips("a")
    report = ingest_dataset("a", two_datasets / "a", CONFIG.model_copy(update={"clip_stride": 12}))
    after = _clips("a")
    starts = sorted(lance_store.read_rows("clips", ["start_frame"], "dataset = 'a'").column(0).to_pylist())
    assert starts == [0, 0, 12, 12, 24, 24]  # 40 frames, 9 per clip, every 12: exactly the new cut
    assert len(after) == 6 and len(set(after) & set(before)) == 4  # starts 0 and 24 kept their ids
    assert (report.clips_recut, report.clips_dropped) == (8, 4)
    assert _feature_ids("a") == set()


def test_first_ingest_and_unchanged_rerun_replace_nothing(two_datasets: Path) -> None:
    report = ingest_dataset("a", two_datasets / "a", CONFIG, progress=False)
    assert (report.clips_recut, report.clips_dropped, report.files_skipped) == (0, 0, 2)
    assert len(_feature_ids("a")) == 8
