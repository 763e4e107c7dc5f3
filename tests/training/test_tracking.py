"""A launcher-made run (`MLFLOW_RUN_ID`) is resumed in its own experiment, whatever the process set."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from dualforce_core import paths
from dualforce_core.training.mlflow_runs import create_run
from dualforce_core.training.tracking import RunLogger


def test_launcher_run_in_another_experiment_receives_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow.set_tracking_uri(paths.mlflow_tracking_uri())
    mlflow.set_experiment("experiment-a")  # what an earlier job in a long-lived Dagster process left active
    run_id = create_run("experiment-b", "launched", {"launcher": "test"})
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    logger = RunLogger(tmp_path / "run", True, True, "experiment-a", "ignored")
    try:
        assert logger.run_id == run_id
        logger.log_params({"p": 1})
        logger.log_step(3, {"train/loss": 0.5}, to_mlflow=True)
    finally:
        logger.close()
    run = mlflow.MlflowClient().get_run(run_id)
    experiment_b = mlflow.get_experiment_by_name("experiment-b")
    assert experiment_b is not None and run.info.experiment_id == experiment_b.experiment_id
    assert (run.data.metrics, run.data.params) == ({"train/loss": 0.5}, {"p": "1"})
    assert (tmp_path / "run" / "mlflow_run_id").read_text().strip() == run_id
