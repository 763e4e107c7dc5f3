"""The whole asset graph on a tiny partition: data → checks → Pipes training → evaluation, in one run.

The graph is materialised once per module (about a minute on 2 CPU cores); the tests then read what it
left. The last test corrupts a feature row to prove a failing blocking check stops training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest
from graph_fixtures import (
    DATASET,
    check_results,
    instance_with_partition,
    materialization,
    prepare_home,
    resources,
)
from mlflow import MlflowClient

from assets import ALL_ASSETS, ALL_CHECKS
from assets.training_set import TRAINING_SET_CHECKS, training_set
from dualforce_core import paths
from dualforce_core.data.lance_store import open_table, read_rows, upsert
from dualforce_core.data.tensor_codec import decode_tensor, encode_tensor
from dualforce_core.features.checks import missing_features, shape_mismatches

TABLES = ("clips", "rejects", "audio_features", "struct_features", "flame_params", "video_latents")


class Graph:
    def __init__(self, home: Path, instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult):
        self.home, self.instance, self.result = home, instance, result


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    home = tmp_path_factory.mktemp("graph") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv(paths.WEIGHTS_ENV, raising=False)
        prepare_home(home)
        instance = instance_with_partition()
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS], partition_key=DATASET, instance=instance, resources=resources(home)
        )
        yield Graph(home, instance, result)


@pytest.fixture
def shared_home(graph: Graph, monkeypatch: pytest.MonkeyPatch) -> Graph:
    monkeypatch.setenv(paths.HOME_ENV, str(graph.home))
    return graph


def _row_counts() -> dict[str, int]:
    return {name: (t.count_rows() if (t := open_table(name)) is not None else 0) for name in TABLES}


@pytest.mark.slow
def test_whole_graph_materialises_with_every_check_passing(shared_home: Graph) -> None:
    result = shared_home.result
    assert result.success
    assert check_results(result) == {
        "reject_rate_below_threshold": True,
        "median_face_size_within_bounds": True,  # crop_mode=center: passes, nothing to check
        "every_clip_has_every_feature": True,
        "features_are_finite": True,
        "shapes_and_lengths_agree": True,
    }
    clips = materialization(result, "clips")
    assert clips["rows"] == 2 and Path(str(clips["table_uri"])).is_dir()
    assert "data:image/png;base64," in str(clips["preview"]) and Path(str(clips["preview_path"])).is_file()
    rejects = materialization(result, "rejects")
    assert rejects["rows"] == 1 and rejects["rejected_this_run"] == 1
    reasons = rejects["rejects_by_reason"]
    assert isinstance(reasons, dict) and sum(reasons.values()) == 1
    for name in ("audio_features", "struct_features", "flame_params", "video_latents"):
        features = materialization(result, name)
        assert features["rows"] == 2 and features["written"] == 2, name
    train = materialization(result, "training_set")
    missing = train["missing_by_table"]
    assert train["clips"] == 2 and isinstance(missing, dict) and set(missing.values()) == {0}
    manifest = json.loads(Path(str(train["manifest"])).read_text())
    assert manifest["versions"]["video_latents"] == train["lance_version/video_latents"]


@pytest.mark.slow
def test_pipes_training_reports_metrics_checkpoint_and_data_versions(shared_home: Graph) -> None:
    checkpoint = materialization(shared_home.result, "dualforce_checkpoint")
    assert checkpoint["step"] == 2 and math.isfinite(float(str(checkpoint["last_loss"])))
    assert (Path(str(checkpoint["final_model"])) / "config.json").is_file()
    assert Path(str(checkpoint["checkpoint"])).name == "step-2"
    training = materialization(shared_home.result, "training_set")
    versions = checkpoint["lance_versions"]
    assert (
        isinstance(versions, dict) and versions["audio_features"] == training["lance_version/audio_features"]
    )
    metrics = checkpoint["final_metrics"]
    assert isinstance(metrics, dict) and metrics["train/loss"] == pytest.approx(checkpoint["last_loss"])
    run = MlflowClient(paths.mlflow_tracking_uri()).get_run(str(checkpoint["mlflow_run_id"]))
    assert run.info.status == "FINISHED" and run.data.tags["dataset"] == DATASET
    assert "train/loss" in run.data.metrics


@pytest.mark.slow
def test_pipes_training_under_torchrun_reports_once_from_rank_zero(shared_home: Graph) -> None:
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key=DATASET,
        instance=shared_home.instance,
        resources=resources(shared_home.home, nproc=2),
        selection=dg.AssetSelection.assets("dualforce_checkpoint"),
    )
    checkpoint = materialization(result, "dualforce_checkpoint")  # exactly one materialisation
    assert checkpoint["step"] == 2
    run = MlflowClient(paths.mlflow_tracking_uri()).get_run(str(checkpoint["mlflow_run_id"]))
    assert run.data.params["world_size"] == "2"


@pytest.mark.slow
def test_failed_training_launch_fails_the_step_and_the_mlflow_run(shared_home: Graph) -> None:
    shared_home.instance.add_dynamic_partitions("datasets", ["never_ingested"])
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key="never_ingested",
        instance=shared_home.instance,
        resources=resources(shared_home.home),
        selection=dg.AssetSelection.assets("dualforce_checkpoint"),
        raise_on_error=False,
    )
    assert not result.success and not result.get_asset_materialization_events()
    client = MlflowClient(paths.mlflow_tracking_uri())
    [run] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.dataset = 'never_ingested'"
    )
    assert run.info.status == "FAILED"


@pytest.mark.slow
def test_evaluation_writes_a_report_for_the_trained_model(shared_home: Graph) -> None:
    evaluation = materialization(shared_home.result, "evaluation")
    report_dir = Path(str(evaluation["report_dir"]))
    assert (report_dir / "report.md").is_file() and (report_dir / "report.json").is_file()
    checkpoint = materialization(shared_home.result, "dualforce_checkpoint")
    assert evaluation["model"] == checkpoint["final_model"]
    assert "stand-in" in str(evaluation["report"]).lower()


@pytest.mark.slow
def test_second_materialisation_adds_no_rows(shared_home: Graph) -> None:
    before = _row_counts()
    again = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key=DATASET,
        instance=shared_home.instance,
        resources=resources(shared_home.home),
        selection=dg.AssetSelection.groups("data") | dg.AssetSelection.assets(training_set),
    )
    assert again.success
    assert _row_counts() == before
    for name in ("audio_features", "struct_features", "video_latents"):
        assert materialization(again, name)["written"] == 0
    assert materialization(again, "clips")["clips_written"] == 0


@pytest.mark.slow
def test_failing_blocking_check_stops_training(shared_home: Graph) -> None:
    """NaN in one clip's audio features: `features_are_finite` fails and the checkpoint is not trained."""
    row = read_rows("audio_features", None, "dataset = 'sample'").slice(0, 1)
    original = row.to_pylist()[0]
    poisoned = decode_tensor(original["features"], original["shape"], original["dtype"]).float().numpy()
    poisoned[0, 0, 0] = np.nan
    blob, _, _ = encode_tensor(poisoned, original["dtype"])
    upsert("audio_features", pa.Table.from_pylist([{**original, "features": blob}], row.schema))
    try:
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            partition_key=DATASET,
            instance=shared_home.instance,
            resources=resources(shared_home.home),
            selection=dg.AssetSelection.assets(training_set, "dualforce_checkpoint"),
            raise_on_error=False,
        )
    finally:
        upsert("audio_features", row)
    assert not result.success
    checks = check_results(result)
    assert checks["features_are_finite"] is False
    assert checks["every_clip_has_every_feature"] is True
    trained = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("dualforce_checkpoint")
    ]
    assert not trained
    assert len(TRAINING_SET_CHECKS) == 3


@pytest.mark.slow
def test_shape_and_coverage_checks_name_the_offending_clip(shared_home: Graph) -> None:
    """A struct row one frame short, and a clip no extractor has seen: each check names the clip."""
    struct = read_rows("struct_features", None, "dataset = 'sample'").slice(0, 1)
    row = struct.to_pylist()[0]
    motion = decode_tensor(row["motion"], row["shape"], "float32")[:-1]
    blob, shape, _ = encode_tensor(motion, "float32")
    clip = read_rows("clips", None, "dataset = 'sample'").slice(0, 1)
    stray = pa.Table.from_pylist([{**clip.to_pylist()[0], "clip_id": "stray-clip"}], clip.schema)
    upsert("struct_features", pa.Table.from_pylist([{**row, "motion": blob, "shape": shape}], struct.schema))
    upsert("clips", stray)
    try:
        [problem] = shape_mismatches(DATASET)
        missing = missing_features(DATASET)
    finally:
        upsert("struct_features", struct)
        table = open_table("clips")
        assert table is not None
        table.delete("clip_id = 'stray-clip'")
    assert problem.startswith(f"struct_features: {row['clip_id']} shape [8, 70]")
    assert missing == {t: ["stray-clip"] for t in ("video_latents", "struct_features", "audio_features")}
    assert not shape_mismatches(DATASET) and not missing_features(DATASET)
