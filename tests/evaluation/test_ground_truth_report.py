"""`dualforce evaluate --ground-truth-only`: FID = FVD = 0 by construction, and a complete, logged report."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import av
import cv2
import mlflow
import numpy as np
import pytest

from dualforce_core import paths
from dualforce_core.cli.main import main
from dualforce_core.config import load_config
from dualforce_core.data.split import split_clips
from tests.evaluation.conftest import DATA_OVERRIDES, DATASET, METRIC_WEIGHTS

# Every test reads the one CLI evaluation below (~21 s, SyncNet on CPU).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_run(eval_home: Path) -> tuple[int, str, Path]:
    """One ground-truth-only run through the CLI, shared by the tests below (SyncNet is slow on CPU)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUALFORCE_HOME", str(eval_home))
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(
                ["evaluate", "--dataset", DATASET, "--ground-truth-only", "--name", "gt", *DATA_OVERRIDES]
            )
    return code, out.getvalue(), eval_home / "reports" / "gt"


@pytest.fixture(scope="module")
def record(cli_run: tuple[int, str, Path]) -> dict[str, Any]:
    code, _, report_dir = cli_run
    assert code == 0
    return json.loads((report_dir / "report.json").read_text())


def test_ground_truth_against_itself_gives_zero_distances(record: dict[str, Any]) -> None:
    metrics = record["metrics"]
    assert metrics["fid"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["fvd"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["acd"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["sync_c"] == metrics["gt_sync_c"] and metrics["csim"] == metrics["gt_csim"]
    assert all(np.isfinite(metrics[k]) for k in record["headline"])
    assert record["mode"] == "ground_truth_only" and record["checkpoint"] is None


def test_report_records_the_protocol_and_the_stand_in_weights(record: dict[str, Any]) -> None:
    protocol = record["protocol"]
    test_ids = split_clips(DATASET, "test", load_config(None, DATA_OVERRIDES).eval)
    assert protocol["clip_ids"] == sorted(test_ids) and protocol["clips"] == len(test_ids) == 2
    assert len(protocol["clip_list_sha256"]) == 64
    assert protocol["resolution"] == [64, 64] and protocol["frames_per_clip"] == [17]
    assert protocol["sync_offsets"] == 15 and protocol["fvd_clip_frames"] == 16 and protocol["fvd_clips"] == 2
    assert set(protocol["weights"]) == set(METRIC_WEIGHTS)
    assert all(w["stand_in"] and len(w["sha256"]) == 64 for w in protocol["weights"].values())
    assert record["stand_in_weights"] is True
    assert set(record["seconds_per_clip"]) == {"fid", "fvd", "sync", "csim_acd", "frechet"}


def test_cli_prints_the_warning_the_metrics_and_the_report_path(cli_run: tuple[int, str, Path]) -> None:
    _, stdout, report_dir = cli_run
    assert stdout.startswith("WARNING: random stand-in network weights")
    assert "fid" in stdout and stdout.rstrip().endswith(f"report: {report_dir}")


def test_markdown_opens_with_the_stand_in_warning(
    cli_run: tuple[int, str, Path], record: dict[str, Any]
) -> None:
    markdown = (cli_run[2] / "report.md").read_text()
    assert markdown.startswith("> **⚠ STAND-IN WEIGHTS.**")
    assert record["protocol"]["clip_list_sha256"] in markdown
    assert "| FID ↓ | 0 |" in markdown


def test_plot_and_side_by_side_videos_with_audio_are_written(
    cli_run: tuple[int, str, Path], record: dict[str, Any]
) -> None:
    report_dir = cli_run[2]
    assert (report_dir / record["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(record["samples"]) == 2
    with av.open(str(report_dir / record["samples"][0])) as container:
        assert container.streams.audio and container.streams.audio[0].sample_rate == 16000
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 17 and frames[0].shape == (64, 128, 3)
    left, right = frames[5][:, :64].astype(int), frames[5][:, 64:].astype(int)
    assert np.abs(left - right).mean() < 3  # ground truth on both sides in this mode
    image = cv2.imread(str(report_dir / record["strips"][0]))
    assert image is not None
    strip = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    assert strip.shape == (2 * 128, 8 * 128, 3)  # 17 frames: every 2nd from frame 1 is 8; 64 px tiles ×2
    top, bottom = strip[:128].astype(int), strip[128:].astype(int)
    assert np.abs(top - bottom).mean() < 3 and top.std() > 10  # a picture, the same one in both rows


def test_mlflow_store_holds_the_run_with_metrics_and_artifacts(record: dict[str, Any]) -> None:
    client = mlflow.MlflowClient(paths.mlflow_tracking_uri())
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.metrics["eval/fid"] == pytest.approx(record["metrics"]["fid"])
    assert {f"eval/{k}" for k in ("fvd", "sync_c", "sync_d", "csim", "acd")} <= set(run.data.metrics)
    assert run.data.tags["stand_in_weights"] == "True"
    assert run.data.params["clip_list_sha256"] == record["protocol"]["clip_list_sha256"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.json", "report/report.md", "report/metrics.png", "report/samples"} <= artifacts
