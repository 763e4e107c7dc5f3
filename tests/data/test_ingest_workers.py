"""`data.workers` / `--workers N`: sources are cut in N spawned processes and the result is the
single-process run's, row for row; a worker that dies costs one reject, not the run."""

from __future__ import annotations

import argparse
import os
from collections import deque
from functools import partial
from pathlib import Path

import pyarrow as pa
import pytest

from dualforce_core import paths
from dualforce_core.cli import ingest_cmd
from dualforce_core.data import lance_store
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import IngestReport, ingest_dataset
from dualforce_core.data.ingest_pool import Cut, Cutter, Handle, Job
from dualforce_core.data.source_cut import cut_source, load_finder
from tests.data.ingest_fixtures import write_batch_corpus, write_bright_region_yunet, write_video

CONFIG = DataConfig(size=32, clip_frames=9, clip_stride=8, commit_every=2)
TIMES = {"clips": "ingested_at", "rejects": "time", "sources": "time"}


def _tables() -> dict[str, pa.Table]:
    """Every ingestion table, sorted by key, without its wall-clock column."""
    keys = {"clips": "clip_id", "rejects": "reject_id", "sources": "source_id"}
    return {name: lance_store.read_rows(name).drop([TIMES[name]]).sort_by(key) for name, key in keys.items()}


def _run(
    home: Path, src: Path, workers: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[IngestReport, dict[str, pa.Table], str]:
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    capsys.readouterr()
    report = ingest_dataset("scale", src, CONFIG.model_copy(update={"workers": workers}))
    return report, _tables(), capsys.readouterr().err


def test_two_workers_write_the_single_process_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "raw"
    write_batch_corpus(src, good=4)
    one, rows_one, progress_one = _run(tmp_path / "one", src, 1, monkeypatch, capsys)
    two, rows_two, progress_two = _run(tmp_path / "two", src, 2, monkeypatch, capsys)

    assert rows_one["clips"].num_rows == one.clips_written > 0
    for name, table in rows_one.items():
        assert rows_two[name].equals(table), name  # same ids, paths, blobs (H.264 and FLAC bytes), boxes
    assert progress_two == progress_one  # same order, same outcomes, the same batches
    assert one.batches_committed == two.batches_committed == 3  # 6 files, commit_every=2
    assert progress_one.count("committed batch") == 3
    assert dict(one.rejects) == dict(two.rejects) == {"corrupt": 1, "no_audio": 1}
    assert (one.files_ingested, one.frames_decoded) == (two.files_ingested, two.frames_decoded)
    assert "batches committed: 3" in two.summary() and "2 workers" in two.summary()


def test_workers_load_their_own_face_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """crop_mode=detector: each worker loads the detector file itself (a cv2 object cannot be sent)."""
    src = tmp_path / "raw"
    write_video(src / "face.mp4", 20, width=160, height=96, bright_box=(56, 24, 104, 72))
    write_video(src / "dark.mp4", 20, width=160, height=96, bright_box=(0, 0, 0, 0))
    detector = write_bright_region_yunet(tmp_path / "yunet_standin.onnx")
    config = CONFIG.model_copy(update={"crop_mode": "detector", "detector_path": str(detector)})
    rows: dict[int, dict[str, pa.Table]] = {}
    for workers in (1, 2):
        monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / f"home{workers}"))
        report = ingest_dataset("faces", src, config.model_copy(update={"workers": workers}), progress=False)
        assert dict(report.rejects) == {"no_face": 1} and report.files_ingested == 1
        rows[workers] = _tables()
    assert all(rows[2][name].equals(table) for name, table in rows[1].items())


def crash_on_poison(job: Job) -> Cut:
    """A stand-in for a decoder that takes its process down on one file."""
    if job.path.name == "poison.mp4":
        os._exit(3)
    return Cut(rows=[{"name": job.path.name}], frames_decoded=1)


@pytest.mark.slow  # three pools start (the first, one after the crash, one after the re-run): 5-15 s
def test_a_worker_that_dies_costs_only_its_own_file() -> None:
    names = ["a.mp4", "b.mp4", "poison.mp4", "c.mp4", "d.mp4", "e.mp4", "f.mp4"]
    results: dict[str, Cut] = {}
    pending: deque[Handle] = deque()
    # The ingest loop's way of feeding the cutter: results are taken in order, as `busy` says.
    with Cutter(2, cut_source, partial(load_finder, CONFIG), work=crash_on_poison) as cutter:
        for name in names:
            while pending and cutter.busy:
                handle = pending.popleft()
                results[handle.job.path.name] = cutter.result(handle)
            pending.append(cutter.submit(Job(Path(name), "scale", "hash", CONFIG)))
        while pending:
            handle = pending.popleft()
            results[handle.job.path.name] = cutter.result(handle)
    assert list(results) == names
    assert results["poison.mp4"].reason == "internal_error" and "worker" in results["poison.mp4"].detail
    assert all(results[name].rows == [{"name": name}] for name in names if name != "poison.mp4")


def test_workers_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="dualforce")
    ingest_cmd.register(parser.add_subparsers())  # the real subcommand, without importing all the others
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["ingest", "--dataset", "x", "--src", str(tmp_path), "--workers", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and ">= 1" in err and "Traceback" not in err
