"""`data.crop_mode=track`: ingestion through face-track curation, on the real-media corpus (opencv-doc photos,
espeak-ng speech; `dualforce_core.curation.corpus`).

Shots split clips, each clip row is one track of one person with its aligned-crop geometry, every refused
frame range is a `rejects` row with its reason and value, a re-run adds nothing, `--workers 2` writes the
same rows, and tables written before the new columns existed take the new rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

from dualforce_core import paths
from dualforce_core.curation import CurationConfig, FaceModels, invert_affine, transform_points
from dualforce_core.curation import corpus as corpus_module
from dualforce_core.data import lance_store, media, tables
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import IngestReport, add_missing_columns, config_fingerprint, ingest_dataset
from dualforce_core.data.ingest_summary import curation_summary, face_size_within, ingest_summary
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.metrics.syncnet import write_stand_in
from tests.data.ingest_fixtures import write_video

SIZE = 64
CONFIG = DataConfig(
    size=SIZE, clip_frames=9, clip_stride=8, crop_mode="track", curation=CurationConfig(min_frames=16)
)
OLD_CONFIG = DataConfig(size=32, clip_frames=9, clip_stride=8)
KEYS = {"clips": "clip_id", "rejects": "reject_id", "sources": "source_id"}
TIMES = {"clips": "ingested_at", "rejects": "time", "sources": "time"}
NEW_COLUMNS = {
    "clips": [
        "track_id",
        "face_px",
        "identity_embedding",
        "landmarks",
        "landmarks_shape",
        "affines",
        "affines_shape",
    ],
    "rejects": ["value"],
    "sources": ["curation_stats"],
}
SAME_PERSON = 0.6


@dataclass
class Run:
    home: Path
    report: IngestReport
    tables: dict[str, pa.Table]


@dataclass
class World:
    src: Path
    truth: corpus_module.Truth
    embeddings: dict[str, np.ndarray]
    first: Run  # into a home whose tables predate the new columns (plus an older dataset's rows)
    again: Run  # the same command again
    workers: Run  # --workers 2 into a fresh home


def _tables(dataset: str) -> dict[str, pa.Table]:
    where = f"dataset = '{dataset}'"
    return {
        name: lance_store.read_rows(name, None, where).drop([TIMES[name]]).sort_by(key)
        for name, key in KEYS.items()
    }


def _ingest(home: Path, src: Path, config: DataConfig) -> Run:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(home))
        report = ingest_dataset("talk", src, config, progress=False)
        return Run(home, report, _tables("talk"))


def _old_schema_home(home: Path, scratch: Path) -> None:
    """A data root as the previous release left it: `clips`/`rejects`/`sources` without the new columns,
    holding another dataset's rows (two clips, one whole-file reject)."""
    write_video(scratch / "old" / "good.mp4", 20)
    write_video(scratch / "old" / "short.mp4", 5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(home))
        ingest_dataset("old", scratch / "old", OLD_CONFIG, progress=False)
        for name, columns in NEW_COLUMNS.items():
            table = lance_store.read_rows(name).drop(columns)
            lance.write_dataset(table, paths.table_uri(name), mode="overwrite")
            assert not set(columns) & set(lance.dataset(paths.table_uri(name)).schema.names)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    corpus_module.check_media()
    root = tmp_path_factory.mktemp("curated_ingest")
    models = FaceModels("hog", upsample=1)
    src = root / "raw"
    _, truth = corpus_module.build_corpus(src, models)  # 181 frames, 9 shots
    shots = corpus_module.default_shots()
    corpus_module.build_corpus(src, models, [shots[8], shots[2]], name="second")  # face, then none
    for sidecar in src.glob("*.json"):
        sidecar.rename(root / sidecar.name)  # keep the ground truth out of the dataset
    embeddings = {}
    for name in corpus_module.PHOTOS:
        image = corpus_module.load_image(name)
        embeddings[name] = models.embed(image, corpus_module.photo_landmarks(models, image))
    _old_schema_home(root / "home", root)
    first = _ingest(root / "home", src, CONFIG)
    again = _ingest(root / "home", src, CONFIG)
    workers = _ingest(root / "home_workers", src, CONFIG.model_copy(update={"workers": 2}))
    yield World(src, truth, embeddings, first, again, workers)


def _rows(world: World, name: str, source: str = "corpus.mp4") -> list[dict]:
    rows = world.first.tables[name].to_pylist()
    return [row for row in rows if Path(row["source_path"]).name == source]


def test_curated_clips_follow_the_shots_and_keep_one_person(world: World) -> None:
    clips = _rows(world, "clips")
    shots = world.truth.shots
    # A_pan, B_roll, C_with_inset, A_again: 32/32/26/28 frames, 3 windows of 9 every 8 frames each.
    assert sorted(row["start_frame"] for row in clips) == [0, 8, 16, 32, 40, 48, 100, 108, 116, 153, 161, 169]
    assert len({row["clip_id"] for row in clips}) == len(clips)
    for row in clips:
        start, end = row["start_frame"], row["start_frame"] + row["num_frames"]
        [shot] = [s for s in shots if s["start"] <= start < s["end"]]
        assert end <= shot["end"] and shot["expect"] == "clip", (start, shot["name"])  # no window spans a cut
        assert row["track_id"] is not None and row["face_px"] > 80
        landmarks = decode_tensor(row["landmarks"], row["landmarks_shape"], "float32").numpy()
        affines = decode_tensor(row["affines"], row["affines_shape"], "float32").numpy()
        people = {
            corpus_module.truth_face(
                world.truth, start + n, transform_points(landmarks[n], invert_affine(affines[n]))
            )["identity"]
            for n in range(row["num_frames"])
        }
        [person] = people
        embedding = decode_tensor(row["identity_embedding"], (tables.EMBEDDING_DIM,), "float32").numpy()
        distances = {name: float(np.linalg.norm(embedding - e)) for name, e in world.embeddings.items()}
        assert distances[person] < SAME_PERSON, distances
        assert all(d >= SAME_PERSON for name, d in distances.items() if name != person), distances
    by_shot: dict[str, set[int]] = {}
    for row in clips:
        shot = next(s for s in shots if s["start"] <= row["start_frame"] < s["end"])
        by_shot.setdefault(shot["name"], set()).add(row["track_id"])
    assert all(len(tracks) == 1 for tracks in by_shot.values()), by_shot  # one track per shot's windows
    assert len(set().union(*by_shot.values())) == 4  # a new shot is a new track, even for the same person


def test_rows_carry_aligned_crops_landmarks_and_affines(world: World) -> None:
    for row in _rows(world, "clips"):
        frames = row["num_frames"]
        assert row["landmarks_shape"] == [frames, 68, 2] and row["affines_shape"] == [frames, 2, 3]
        landmarks = decode_tensor(row["landmarks"], row["landmarks_shape"], "float32").numpy()
        affines = decode_tensor(row["affines"], row["affines_shape"], "float32").numpy()
        assert np.all((landmarks > 0) & (landmarks < SIZE)), row["start_frame"]
        video = media.decode_video(row["video"])
        assert video.shape == (frames, SIZE, SIZE, 3)
        x0, y0, x1, y1 = row["face_box"]
        assert x0 < x1 and y0 < y1
        for n in range(frames):
            # The stored landmarks are the face's own, through the stored affine (ground truth within 1.5 px).
            source = transform_points(landmarks[n], invert_affine(affines[n]))
            truth = np.asarray(
                corpus_module.truth_face(world.truth, row["start_frame"] + n, source)["landmarks"]
            )
            error = np.abs(transform_points(truth, affines[n]) - landmarks[n]).mean()
            assert error < 1.5, (row["start_frame"], n, error)


def test_refused_frame_ranges_are_rejects_with_reasons_and_values(world: World) -> None:
    rejects = _rows(world, "rejects")
    assert all(r["stage"] == "curate" for r in rejects)
    by_reason: dict[str, list[dict]] = {}
    for row in rejects:
        by_reason.setdefault(row["reason"], []).append(row)
    assert set(by_reason) == {
        "no_face",
        "several_faces",
        "tiny_face",
        "secondary_face",
        "blur",
        "short_track",
    }
    [no_face] = by_reason["no_face"]
    assert no_face["detail"].startswith("frames [64, 76) (no track)") and no_face["value"] == 0.0
    two = by_reason["several_faces"]  # one reject per face of the two-face shot
    assert len(two) == 2 and all(r["detail"].startswith("frames [76, 88)") and r["value"] == 2.0 for r in two)
    [tiny] = by_reason["tiny_face"]
    assert tiny["detail"].startswith("frames [88, 100)") and 40 < tiny["value"] < 50  # a 44-px face
    [blur] = by_reason["blur"]
    assert blur["value"] < CONFIG.curation.min_blur
    [short] = by_reason["short_track"]
    assert short["value"] == 9.0
    assert len({r["reject_id"] for r in rejects}) == len(rejects) == 7
    # The second file: a face shot, then a shot with none; the whole-file reject of the old dataset kept
    # its row and its value column was filled by nothing (null), the new too_short rows carry one.
    [second_no_face] = _rows(world, "rejects", "second.mp4")
    assert second_no_face["reason"] == "no_face" and second_no_face["detail"].startswith("frames [28, 40)")


def test_a_rerun_adds_nothing(world: World) -> None:
    assert world.first.report.files_ingested == 2 and world.again.report.files_skipped == 2
    assert world.again.report.clips_written == 0 and not world.again.report.segments_rejected
    for name, table in world.first.tables.items():
        assert world.again.tables[name].equals(table), name


def test_two_workers_write_the_same_rows(world: World) -> None:
    for name, table in world.first.tables.items():
        assert world.workers.tables[name].equals(table), name
    assert dict(world.workers.report.segments_rejected) == dict(world.first.report.segments_rejected)


def test_tables_from_before_the_new_columns_take_the_new_rows(world: World, monkeypatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(world.first.home))
    for name, columns in NEW_COLUMNS.items():
        assert set(columns) <= set(lance.dataset(paths.table_uri(name)).schema.names), name
    old = _tables("old")
    assert old["clips"].num_rows == 2 and old["clips"].column("track_id").null_count == 2
    [old_reject] = old["rejects"].to_pylist()
    assert old_reject["reason"] == "too_short" and old_reject["value"] is None  # written before `value`
    # A whole-file reject written now carries its measured value.
    write_video(world.first.home.parent / "more" / "short.mp4", 6)
    ingest_dataset("more", world.first.home.parent / "more", OLD_CONFIG, progress=False)
    [new_reject] = _tables("more")["rejects"].to_pylist()
    assert (new_reject["reason"], new_reject["value"], new_reject["stage"]) == ("too_short", 6.0, "probe")


def test_a_non_null_column_a_table_lacks_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    lance_store.upsert("t", pa.table({"k": ["a"]}), "k")
    schema = pa.schema([pa.field("k", pa.string()), pa.field("v", pa.int32(), nullable=False)])
    with pytest.raises(UserError, match=r"predates the non-null column\(s\) v: move .* run `dualforce x`"):
        add_missing_columns(tables.Table("t", "k", schema, "dualforce x"))
    nullable = pa.schema([pa.field("k", pa.string()), pa.field("w", pa.float64())])
    assert add_missing_columns(tables.Table("t", "k", nullable, "dualforce x")) == ["w"]
    assert add_missing_columns(tables.Table("t", "k", nullable, "dualforce x")) == []  # once


def test_curation_summary_and_face_size_bounds(world: World, monkeypatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(world.first.home))
    summary = curation_summary("talk")
    assert summary is not None
    assert (summary.files, summary.frames, summary.cuts) == (2, 221, 9)
    assert summary.windows == 15 == _tables("talk")["clips"].num_rows
    assert summary.rejects == {
        "blur": 1,
        "no_face": 2,
        "secondary_face": 1,
        "several_faces": 2,
        "short_track": 1,
        "tiny_face": 1,
    }
    assert summary.rejected_frames["several_faces"] == 24 and summary.rejected_frames["no_face"] == 24
    assert 100 < summary.face_px["p10"] <= summary.face_px["median"] <= summary.face_px["p90"] < 130
    json.dumps(summary.as_dict())
    assert face_size_within(summary, CONFIG.face_px_median_min, CONFIG.face_px_median_max)[0]
    assert not face_size_within(summary, 150, 1000)[0]
    # Curated frame ranges are not rejected files: the reject rate stays a per-file measure.
    ingest = ingest_summary("talk")
    assert ingest.reject_rate == 0.0 and ingest.segment_rejects == summary.rejects
    assert curation_summary("old") is None


def test_curation_settings_are_part_of_the_fingerprint() -> None:
    stricter = CONFIG.model_copy(update={"curation": CurationConfig(min_frames=16, min_face_px=90)})
    assert config_fingerprint(stricter) != config_fingerprint(CONFIG)
    centre = DataConfig(size=SIZE, clip_frames=9, clip_stride=8)
    assert config_fingerprint(centre) == config_fingerprint(
        centre.model_copy(update={"curation": CurationConfig(min_face_px=90)})
    )


def test_dagster_clips_carry_curation_statistics_and_the_face_size_check_blocks(
    world: World, tmp_path: Path
) -> None:
    """The thin asset: curation statistics, the SyncNet filter's confidence histogram (SyncNet from the
    config's weights: a random network not labelled a stand-in, keeping every clip) and the aligned-crop
    contact sheet in the `clips` metadata; the blocking face-size check fails when the median face leaves
    the configured bounds (the short second file, with data.face_px_median_min above its faces; within
    bounds: the summary test above)."""
    import dagster as dg

    from assets.clips import ingest, median_face_size_within_bounds, reject_rate_below_threshold
    from assets.raw_videos import raw_videos
    from pipelines.resources import DualForceSettings

    home = tmp_path / "home"
    (home / "raw" / "talk").mkdir(parents=True)
    (tmp_path / "weights" / "metrics").mkdir(parents=True)
    write_stand_in(tmp_path / "weights" / "metrics" / "syncnet_v2.model", seed=0)
    (home / "raw" / "talk" / "second.mp4").write_bytes((world.src / "second.mp4").read_bytes())
    overrides = [
        "data.crop_mode=track",
        "data.size=64",
        "data.clip_frames=9",
        "data.clip_stride=8",
        "data.curation.min_frames=16",
        "data.face_px_median_min=150",
        "data.curation.sync.min_confidence=0",
        "data.curation.sync.max_offset=2",
        "data.curation.sync.search_offset=2",
        f"weights.root={tmp_path / 'weights'}",
    ]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("datasets", ["talk"])
    result = dg.materialize(
        [raw_videos, ingest, reject_rate_below_threshold, median_face_size_within_bounds],
        partition_key="talk",
        instance=instance,
        resources={"settings": DualForceSettings(home=str(home), overrides=overrides)},
        raise_on_error=False,
    )
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["reject_rate_below_threshold"].passed
    face_check = checks["median_face_size_within_bounds"]
    assert not face_check.passed and "below data.face_px_median_min=150" in str(face_check.description)
    [clips] = [
        {key: value.value for key, value in m.metadata.items()}
        for m in result.asset_materializations_for_node("ingest")
        if m.asset_key == dg.AssetKey("clips")
    ]
    stats = json.loads(json.dumps(clips["curation"]))
    assert stats["tracks"] >= 1 and stats["cuts"] == 1 and stats["clips"] == 1 and stats["windows"] == 3
    assert clips["curation_cuts"] == 1 and clips["rows"] == 3
    assert clips["curation_rejects_by_reason"] == {"no_face": 1}
    face_px = json.loads(json.dumps(clips["face_px"]))
    assert face_px.keys() == {"median", "p10", "p90"} and clips["face_px_median"] == face_px["median"] < 150
    assert "data:image/png;base64," in str(clips["preview"])
    assert str(clips["sync_filter"]).startswith("on (SyncNet") and clips["sync_verdicts"] == {"kept": 1}
    assert "| Sync-C | curated clips | kept |" in str(clips["sync_confidence_histogram"])
