"""`data.crop_mode=track` with the SyncNet filter, on real media (opencv-doc photos, espeak-ng speech;
`dualforce_core.curation.corpus`): two 20-frame shots of two people, two 9-frame windows each.

No real SyncNet weights exist offline, so the mechanics run on `metrics.syncnet.write_stand_in`'s random
network saved where the registry does not label it a stand-in (so it is taken as the real one): kept
windows carry the source audio cut at the offset the filter recorded, refused clips lose every window to a
`low_sync` reject carrying the recorded confidence, and with stand-in-labelled weights the filter is
skipped with one warning and the rows are those of a run with the filter off.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dualforce_core import paths
from dualforce_core.cli.main import main
from dualforce_core.curation import CurationConfig, FaceModels
from dualforce_core.curation import corpus as corpus_module
from dualforce_core.curation.config import SyncFilterConfig
from dualforce_core.data import lance_store, media
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import (
    SYNC_MIN_FRAMES,
    IngestReport,
    config_fingerprint,
    ingest_dataset,
    sync_filter_weights,
)
from dualforce_core.data.ingest_summary import curation_summary
from dualforce_core.metrics.syncnet import WINDOW_FRAMES, write_stand_in
from dualforce_core.timeline import SAMPLE_RATE, SAMPLES_PER_FRAME
from dualforce_core.weights.registry import WeightsRegistry, init_random

FRAMES = 9
CONFIG = DataConfig(
    size=64, clip_frames=FRAMES, clip_stride=8, crop_mode="track", curation=CurationConfig(min_frames=16)
)
ARGS = [
    "data.size=64",
    f"data.clip_frames={FRAMES}",
    "data.clip_stride=8",
    "data.crop_mode=track",
    "data.curation.min_frames=16",
]
KEYS = {"clips": "clip_id", "rejects": "reject_id", "sources": "source_id"}
TIMES = {"clips": "ingested_at", "rejects": "time", "sources": "time"}
WINDOWS = [(0, 0), (0, 8), (1, 20), (1, 28)]  # (track, start) of the four windows


@dataclass
class Corpus:
    src: Path
    real: Path  # a weights root whose syncnet_v2.model is not labelled a stand-in
    stand_in: Path  # a weights root written by `init_random`


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    corpus_module.check_media()
    root = tmp_path_factory.mktemp("sync_ingest")
    shots = [replace(shot, frames=20) for shot in corpus_module.default_shots()[:2]]  # A_pan, B_roll
    corpus_module.build_corpus(root / "raw", FaceModels("hog", upsample=1), shots, name="talk")
    (root / "raw" / "talk.json").rename(root / "talk.json")  # the ground truth is not a source
    (root / "real" / "metrics").mkdir(parents=True)
    write_stand_in(root / "real" / "metrics" / "syncnet_v2.model", seed=0)
    init_random(root / "stand_in", ["syncnet"])
    return Corpus(root / "raw", root / "real", root / "stand_in")


def _sync(**settings: object) -> DataConfig:
    curation = CurationConfig(min_frames=16, sync=SyncFilterConfig.model_validate(settings))
    return CONFIG.model_copy(update={"curation": curation})


def _tables() -> dict[str, pa.Table]:
    """Every ingestion table of the dataset without its wall-clock column (a table never written: empty)."""
    tables = {name: lance_store.read_rows(name, None, "dataset = 'talk'") for name in KEYS}
    return {
        name: table.drop([TIMES[name]]).sort_by(KEYS[name]) if table.num_columns else table
        for name, table in tables.items()
    }


def _ingest(
    home: Path, corpus: Corpus, config: DataConfig, weights: WeightsRegistry | None
) -> tuple[IngestReport, dict[str, pa.Table]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(home))
        report = ingest_dataset("talk", corpus.src, config, progress=False, weights=weights)
        return report, _tables()


def _stats(tables: dict[str, pa.Table]) -> dict:
    [row] = tables["sources"].to_pylist()
    return json.loads(row["curation_stats"])


def _verdict(stats: dict, track: int, start: int) -> dict:
    [entry] = [e for e in stats["sync"] if e["track_id"] == track and e["start"] <= start < e["end"]]
    return entry


def test_kept_windows_carry_the_source_audio_cut_at_the_corrected_offset(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI, with the weights from the config (`weights.root`): nothing is refused, and each
    stored clip's audio is the source audio from frame start − offset, sample for sample."""
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    sync = ["min_confidence=0", "max_offset=2", "search_offset=2"]
    args = [*ARGS, *(f"data.curation.sync.{s}" for s in sync), f"weights.root={corpus.real}"]
    assert main(["ingest", "--dataset", "talk", "--src", str(corpus.src), "--quiet", *args]) == 0
    assert (
        f"sync filter: on (SyncNet {corpus.real / 'metrics' / 'syncnet_v2.model'}" in capsys.readouterr().out
    )
    tables = _tables()
    stats = _stats(tables)
    assert stats["sync_filtered"] and [(e["track_id"], e["start"], e["end"]) for e in stats["sync"]] == [
        (0, 0, 20),
        (1, 20, 40),
    ]
    assert all(e["verdict"] == "kept" and e["windows"] == 2 * (FRAMES - WINDOW_FRAMES) for e in stats["sync"])
    assert any(e["offset"] for e in stats["sync"])  # the audio really moves
    assert tables["rejects"].num_rows == 0
    rows = tables["clips"].to_pylist()
    assert sorted((row["track_id"], row["start_frame"]) for row in rows) == WINDOWS

    source = corpus.src / "talk.mp4"
    audio, audio_start = media.decode_audio_track(source, SAMPLE_RATE)
    offset = round((media.probe(source).start_s - audio_start) * SAMPLE_RATE)
    length = FRAMES * SAMPLES_PER_FRAME
    for row in rows:
        shift = _verdict(stats, row["track_id"], row["start_frame"])["offset"]
        first = offset + (row["start_frame"] - shift) * SAMPLES_PER_FRAME
        assert first >= 0 and first + length <= len(audio)  # all of it from the source, no padding
        expected, _ = media.decode_audio(media.encode_audio(audio[first : first + length], SAMPLE_RATE))
        stored, rate = media.decode_audio(row["audio"])
        assert rate == SAMPLE_RATE
        np.testing.assert_array_equal(stored, expected)
        if shift:
            unshifted = offset + row["start_frame"] * SAMPLES_PER_FRAME
            assert not np.array_equal(stored, audio[unshifted : unshifted + length])


def test_a_clip_below_the_confidence_loses_every_window_with_its_confidence(
    corpus: Corpus, tmp_path: Path
) -> None:
    report, tables = _ingest(tmp_path, corpus, _sync(min_confidence=1e9), WeightsRegistry(corpus.real))
    assert tables["clips"].num_rows == 0 and report.files_ingested == 1
    assert dict(report.segments_rejected) == {"low_sync": 4}
    stats = _stats(tables)
    assert stats["windows"] == 0 and [e["verdict"] for e in stats["sync"]] == ["low_sync", "low_sync"]
    rejects = tables["rejects"].to_pylist()
    assert len(rejects) == 4 and all(r["stage"] == "curate" and r["reason"] == "low_sync" for r in rejects)
    for reject in rejects:
        start, end = (int(v) for v in reject["detail"].split("[")[1].split(")")[0].split(", "))
        [track] = [t for t, s in WINDOWS if s == start]
        assert end == start + FRAMES
        assert reject["value"] == _verdict(stats, track, start)["confidence"]
        assert "min_confidence=1000000000.0" in reject["detail"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(tmp_path))
        summary = curation_summary("talk")
    assert summary is not None and summary.sync_filtered_files == 1
    assert summary.sync_verdicts == {"low_sync": 2} and summary.rejects == {"low_sync": 4}
    histogram = summary.sync_histogram()
    assert sum(clips for _, clips, _ in histogram) == 2 and sum(kept for _, _, kept in histogram) == 0
    assert "| Sync-C | curated clips | kept |" in summary.sync_histogram_markdown()


def test_stand_in_weights_skip_the_filter_with_one_warning(
    corpus: Corpus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = WeightsRegistry(corpus.stand_in)
    assert registry.is_stand_in("syncnet")
    with caplog.at_level(logging.WARNING):
        report, tables = _ingest(tmp_path / "stand_in", corpus, CONFIG, registry)
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "SyncNet filter skipped" in warning.getMessage() and "random stand-in" in warning.getMessage()
    assert "weights.paths.syncnet" in warning.getMessage()
    assert report.sync_filter.startswith("SKIPPED (") and "sync filter: SKIPPED" in report.summary()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        off_report, off = _ingest(tmp_path / "off", corpus, _sync(enabled=False), registry)
    assert not caplog.records and off_report.sync_filter.startswith(
        "SKIPPED (data.curation.sync.enabled=false"
    )
    for name in ("clips", "rejects"):
        assert tables[name].equals(off[name]), name
    assert _stats(tables) == _stats(off) and not _stats(tables)["sync_filtered"] and not _stats(off)["sync"]
    assert sorted((row["track_id"], row["start_frame"]) for row in tables["clips"].to_pylist()) == WINDOWS


def test_two_workers_load_syncnet_and_write_the_same_rows(corpus: Corpus, tmp_path: Path) -> None:
    """Each spawned worker loads dlib's models and SyncNet once (`load_finder` through `worker_start`)."""
    config = _sync(min_confidence=0.0, max_offset=2, search_offset=2)
    weights = WeightsRegistry(corpus.real)
    _, one = _ingest(tmp_path / "one", corpus, config, weights)
    report, two = _ingest(tmp_path / "two", corpus, config.model_copy(update={"workers": 2}), weights)
    assert report.workers == 2 and _stats(two)["sync_filtered"]
    for name, table in one.items():
        assert two[name].equals(table), name


def test_why_the_filter_does_not_run(
    corpus: Corpus, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = WeightsRegistry(corpus.real)
    path = real.location("syncnet")
    assert sync_filter_weights(CONFIG, real)[0] == path
    assert sync_filter_weights(CONFIG.model_copy(update={"crop_mode": "center"}), real) == (None, "")
    skipped = {
        "no weights registry": (CONFIG, None),
        "no SyncNet weights at": (CONFIG, WeightsRegistry(tmp_path)),
        "needs 25 fps": (CONFIG.model_copy(update={"fps": 30}), real),
        "shorter than one SyncNet window": (CONFIG.model_copy(update={"clip_frames": 5}), real),
    }
    for why, (config, weights) in skipped.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert sync_filter_weights(config, weights)[0] is None
        [warning] = caplog.records
        assert why in warning.getMessage(), why
    assert SYNC_MIN_FRAMES == WINDOW_FRAMES + 1


def test_the_filter_and_its_weights_are_part_of_the_fingerprint(corpus: Corpus) -> None:
    path = WeightsRegistry(corpus.real).location("syncnet")
    assert config_fingerprint(CONFIG, path) != config_fingerprint(CONFIG)  # adding the weights re-ingests
    assert config_fingerprint(_sync(min_confidence=4.0), path) != config_fingerprint(CONFIG, path)
    centre = DataConfig(size=64, clip_frames=FRAMES, clip_stride=8)
    assert config_fingerprint(centre, path) == config_fingerprint(centre)
