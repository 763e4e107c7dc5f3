"""Ingestion over a folder of good and bad files: good ones become clips, each bad one one reject."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import lance
import numpy as np
import pytest

from dualforce_core import paths
from dualforce_core.data import lance_store, media
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import IngestReport, discover, ingest_dataset, ingest_files
from dualforce_core.errors import UserError
from dualforce_core.sample_data import generate_dataset
from tests.data.ingest_fixtures import (
    broken_symlink,
    random_bytes,
    truncate,
    write_corrupted_packets,
    write_video,
)

CONFIG = DataConfig(size=32, clip_frames=9, clip_stride=8, max_resolution=256, max_duration_s=3.0)
VFR_TIMES = [sum(0.03 if i % 2 else 0.05 for i in range(k)) for k in range(40)]

EXPECTED_REJECTS = {
    "zero.mp4": "zero_bytes",
    "random.mp4": "corrupt",
    "truncated.mp4": "corrupt",
    "truncated_indexed.mp4": "corrupt",
    "noaudio.mp4": "no_audio",
    "audio_only.mp4": "no_video",
    "single_frame.mp4": "too_short",
    "short.mp4": "too_short",
    "glitch.mp4": "decode_error",
    "big.mp4": "too_large",
    "long.mp4": "too_long",
    "notes.txt": "not_video",
    # Tests run as root, so chmod 000 cannot make a file unreadable: a directory named like a video and a
    # dangling symlink stand in for it (a PermissionError takes the same path).
    "folder.mp4": "unreadable",
    "dangling.mp4": "unreadable",
    "gone.mp4": "vanished",
}

UNHASHED = {"zero_bytes", "not_video", "unreadable", "vanished"}
"""Rejected before their content is read, so checked again (cheaply) on every run."""


def expected_clips(seconds: float, config: DataConfig = CONFIG) -> int:
    """Clips from a source of this duration: every 25 fps grid point inside it gets a frame."""
    frames = math.ceil(seconds * config.fps - 1e-6)
    return (frames - config.clip_frames) // config.clip_stride + 1


Corpus = tuple[Path, IngestReport, dict[str, int]]


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Path, IngestReport, dict[str, int]]]:
    """One ingest run over the mixed folder: (data root, src, report, expected clips per good file name)."""
    root = tmp_path_factory.mktemp("ingest")
    src = root / "raw"
    generated = generate_dataset(src, clips=2, seconds=1.2, size=64)
    good = {path.name: expected_clips(1.2) for path in generated}
    write_video(src / "sub dir" / "héllo wörld 1.mp4", 40)
    good["héllo wörld 1.mp4"] = expected_clips(40 / 25)
    write_video(src / "rate30.mp4", 45, fps=30)
    good["rate30.mp4"] = expected_clips(45 / 30)
    write_video(src / "vfr.mp4", 40, frame_times=VFR_TIMES)
    good["vfr.mp4"] = expected_clips(media.probe(src / "vfr.mp4").duration_s)

    (src / "zero.mp4").write_bytes(b"")
    random_bytes(src / "random.mp4")
    truncate(write_video(root / "whole.mp4", 40), src / "truncated.mp4")
    truncate(generated[0], src / "truncated_indexed.mp4")
    write_video(src / "noaudio.mp4", 30, audio=False)
    write_video(src / "audio_only.mp4", 30, video=False)
    write_video(src / "single_frame.mp4", 1)
    write_video(src / "short.mp4", 6)
    write_corrupted_packets(write_video(root / "clean.mp4", 40), src / "glitch.mp4")
    write_video(src / "big.mp4", 10, width=320, height=288)
    write_video(src / "long.mp4", 80)
    (src / "notes.txt").write_text("not a video")
    (src / "folder.mp4").mkdir()
    broken_symlink(src / "dangling.mp4")
    write_video(src / "gone.mp4", 30)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(root / "home"))
        found = discover(src, CONFIG)
        (src / "gone.mp4").unlink()
        report = ingest_files("mixed", src, found, CONFIG, progress=False)
    yield root / "home", src, report, good


@pytest.fixture
def corpus(
    ingested: tuple[Path, Path, IngestReport, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> Corpus:
    """The module's ingest run, with this test pointed at its data root (the root conftest gives each test
    a fresh one)."""
    home, src, report, good = ingested
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    return src, report, good


def test_every_good_file_becomes_its_clips(corpus: Corpus) -> None:
    _, report, good = corpus
    clips = lance_store.read_rows("clips", ["source_path", "clip_id"])
    per_file: dict[str, int] = {}
    for path in clips.column("source_path").to_pylist():
        per_file[Path(path).name] = per_file.get(Path(path).name, 0) + 1
    assert per_file == good
    assert report.files_ingested == len(good)
    assert report.clips_written == clips.num_rows == sum(good.values())
    assert len(set(clips.column("clip_id").to_pylist())) == clips.num_rows


def test_every_bad_file_is_one_reject_with_its_reason(corpus: Corpus) -> None:
    _, report, _ = corpus
    rejects = lance_store.read_rows("rejects", ["source_path", "stage", "reason", "detail"]).to_pylist()
    assert {Path(row["source_path"]).name: row["reason"] for row in rejects} == EXPECTED_REJECTS
    assert len(rejects) == len(EXPECTED_REJECTS)
    assert all(row["detail"] and row["stage"] for row in rejects)
    assert sum(report.rejects.values()) == len(EXPECTED_REJECTS)
    assert "internal_error" not in report.rejects


def test_rerun_adds_no_rows_and_no_versions(corpus: Corpus) -> None:
    src, first, _ = corpus
    rows_before = {name: lance_store.read_rows(name, ["dataset"]).num_rows for name in first.versions}
    again = ingest_dataset("mixed", src, CONFIG, progress=False)
    assert again.versions == first.versions
    assert {name: lance_store.read_rows(name, ["dataset"]).num_rows for name in first.versions} == rows_before
    assert again.clips_written == 0 and again.files_ingested == 0
    lasting = [name for name, reason in EXPECTED_REJECTS.items() if reason not in UNHASHED]
    assert again.files_skipped == first.files_ingested + len(lasting)


def test_new_file_adds_only_its_clips(corpus: Corpus) -> None:
    src, _, _ = corpus
    before = lance_store.read_rows("clips", ["clip_id"]).num_rows
    rejects_version = lance_store.table_version("rejects")
    write_video(src / "late arrival.mp4", 30)
    report = ingest_dataset("mixed", src, CONFIG, progress=False)
    clips = lance_store.read_rows("clips", ["source_path"])
    added = [p for p in clips.column("source_path").to_pylist() if p.endswith("late arrival.mp4")]
    assert report.files_ingested == 1
    assert len(added) == report.clips_written == expected_clips(30 / 25)
    assert clips.num_rows == before + len(added)
    assert lance_store.table_version("rejects") == rejects_version


def test_rows_open_with_plain_lance_and_blobs_decode(corpus: Corpus) -> None:
    table = lance.dataset(paths.table_uri("clips")).to_table()
    assert table.num_rows > 0
    for row in table.to_pylist():
        frames = media.decode_video(row["video"])
        assert frames.shape == (row["num_frames"], CONFIG.size, CONFIG.size, 3)
        audio, rate = media.decode_audio(row["audio"])
        assert rate == row["audio_sample_rate"] == 16000
        assert audio.shape == (row["num_frames"] * rate // row["fps"],)
        assert row["end_s"] - row["start_s"] == pytest.approx(row["num_frames"] / 25)
        assert len(row["face_box"]) == 4
        if "clip0" in row["source_path"]:
            assert row["sidecar_path"] == str(Path(row["source_path"]).with_suffix(".json"))
            assert np.std(audio) > 0.001


def test_vfr_sources_are_rejected_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    write_video(tmp_path / "raw" / "vfr.mp4", 40, frame_times=VFR_TIMES)
    write_video(tmp_path / "raw" / "steady.mp4", 40)
    report = ingest_dataset("vfr", tmp_path / "raw", CONFIG.model_copy(update={"vfr_policy": "reject"}))
    assert dict(report.rejects) == {"vfr": 1}
    assert report.files_ingested == 1


def test_missing_source_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        ingest_dataset("x", tmp_path / "nowhere", CONFIG)


def test_bad_dataset_name_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dataset name"):
        ingest_dataset("no spaces/here", tmp_path, CONFIG)
