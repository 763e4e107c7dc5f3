"""Evaluating generated video: a tiny random checkpoint through the streaming sampler, the still-portrait
baseline, logging into a launcher's MLflow run, and the errors a user can make."""

from __future__ import annotations

import json
from pathlib import Path

import av
import mlflow
import numpy as np
import pytest
import torch

from dualforce_core import paths
from dualforce_core.cli.main import main
from dualforce_core.config import DualForceConfig, load_config
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.data.split import assign_splits
from dualforce_core.errors import UserError
from dualforce_core.evaluation.evaluate import evaluate
from dualforce_core.evaluation.generation import generate_clip, still_generator
from dualforce_core.models import DualForceModel
from dualforce_core.sample_data import generate_dataset
from tests.evaluation.conftest import DATA_OVERRIDES, DATASET
from tests.records import write_identity_record


@pytest.mark.slow  # generation through the streaming sampler, then every metric: ~19 s
def test_tiny_random_checkpoint_end_to_end_gives_finite_metrics(
    eval_home: Path, config: DualForceConfig
) -> None:
    torch.manual_seed(0)
    checkpoint = DualForceModel.from_preset("tiny").save_pretrained(eval_home / "runs" / "r1" / "final")
    write_identity_record(checkpoint, 64)
    result = evaluate(checkpoint, DATASET, config, limit=2)
    assert result.report_dir == paths.reports_dir() / f"{DATASET}-test-r1-final"
    assert all(np.isfinite(result.metrics[k]) for k in ("fid", "fvd", "sync_c", "sync_d", "csim", "acd"))
    assert result.metrics["fid"] > 0 and result.metrics["acd"] > 0
    record = json.loads((result.report_dir / "report.json").read_text())
    assert record["mode"] == "checkpoint" and record["checkpoint"] == str(checkpoint.resolve())
    assert record["protocol"]["generated_resolution"] == [[64, 64]]
    assert record["protocol"]["frames_per_clip"] == [17]
    assert record["seconds_per_clip"]["generate"] > 0
    generation = {k: v for k, v in record["protocol"]["weights"].items() if k in ("wan_vae", "hubert")}
    assert len(generation) == 2 and all(w["stand_in"] for w in generation.values())
    assert "wan_vae, hubert, liveportrait_motion are randomly initialised" in result.markdown


@pytest.mark.slow  # a full evaluation of the still baseline: ~15 s
def test_still_baseline_logs_into_the_launchers_mlflow_run(
    config: DualForceConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow.set_tracking_uri(paths.mlflow_tracking_uri())
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(config.eval.experiment)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(config.eval.experiment)
    )
    launcher_run = client.create_run(experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher_run)
    result = evaluate(None, DATASET, config, generator=still_generator, limit=1, name="still")
    assert result.mlflow_run_id == launcher_run
    metrics = result.metrics
    assert metrics["csim"] == pytest.approx(1.0)  # the reference frame itself, every frame
    assert metrics["acd"] > 0 and metrics["fid"] > 0
    assert np.isnan(metrics["fvd"]) and result.record["metrics"]["fvd"] is None
    assert "FVD needs at least 2 clips" in result.markdown and "| FVD ↓ | n/a |" in result.markdown
    logged = mlflow.MlflowClient().get_run(launcher_run).data.metrics
    assert logged["eval/csim"] == pytest.approx(1.0) and "eval/fvd" not in logged
    with av.open(str(result.report_dir / result.record["samples"][0])) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    still = frames[:, :, 64:].astype(int)
    assert np.abs(still - still[:1]).mean() < 2 < np.abs(frames[:, :, :64].astype(int) - still).mean()


def test_generate_clip_rejects_what_is_not_video() -> None:
    with pytest.raises(UserError, match="uint8 RGB frames"):
        generate_clip(
            lambda ref, audio: np.zeros((3, 8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros(640)
        )
    one_second = generate_clip(still_generator, np.zeros((8, 8, 3), np.uint8), np.zeros(16000))
    assert one_second.shape == (25, 8, 8, 3)


def run_cli(*args: str) -> int:
    return main(["evaluate", "--dataset", DATASET, *args, *DATA_OVERRIDES])


def test_missing_checkpoint_and_weights_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--checkpoint", str(tmp_path / "nope")) == 2
    assert "does not exist; pass a saved model directory" in capsys.readouterr().err
    assert run_cli("--ground-truth-only", f"weights.root={tmp_path}") == 2
    err = capsys.readouterr().err
    assert "weights for 'inception' not found" in err and "Traceback" not in err
    assert run_cli("--baseline", "still", "--limit", "0") == 2
    assert "limit must be at least 1" in capsys.readouterr().err


def test_empty_split_and_unknown_dataset_name_the_ingest_command(
    eval_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_dataset(tmp_path / "solo", clips=1, seed=1, seconds=0.72, size=64, identities=1)
    ingest_dataset(
        "solo", tmp_path / "solo", DataConfig(clip_frames=17, clip_stride=17, size=64), progress=False
    )
    (only,) = assign_splits(["sidecar:0"], 0.2).values()
    empty = "train" if only == "test" else "test"
    assert (
        main(["evaluate", "--dataset", "solo", "--ground-truth-only", "--split", empty, *DATA_OVERRIDES]) == 2
    )
    err = capsys.readouterr().err
    assert f"split '{empty}' of dataset 'solo' is empty" in err and "dualforce ingest --dataset solo" in err
    assert main(["evaluate", "--dataset", "ghost", "--ground-truth-only"]) == 2
    assert "dualforce ingest --dataset ghost" in capsys.readouterr().err


def test_a_folder_that_is_not_a_report_is_never_replaced(eval_home: Path, config: DualForceConfig) -> None:
    precious = paths.reports_dir() / "precious"
    precious.mkdir(parents=True)
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not an evaluation report"):
        evaluate(None, DATASET, config, ground_truth_only=True, name="precious")
    with pytest.raises(UserError, match="report name"):
        evaluate(None, DATASET, load_config(None, DATA_OVERRIDES), ground_truth_only=True, name="../up")
    assert (precious / "notes.txt").read_text() == "keep me"
