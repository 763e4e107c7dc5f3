"""The MLflow run a pipeline-launched training logs into: created before the launch, so the run id can be
handed to the trainer (`MLFLOW_RUN_ID`) and the run marked failed if the launch dies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dualforce_core import paths

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _client(tracking_uri: str | None) -> MlflowClient:
    from mlflow import MlflowClient  # imported here: importing mlflow is slow

    return MlflowClient(tracking_uri or paths.mlflow_tracking_uri())


def create_run(
    experiment: str, run_name: str, tags: Mapping[str, str], tracking_uri: str | None = None
) -> str:
    """A new RUNNING run in `experiment` (created with the data root's artifact store when missing)."""
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id
        if found is not None
        else client.create_experiment(experiment, artifact_location=paths.mlflow_artifact_root())
    )
    return str(client.create_run(experiment_id, run_name=run_name, tags=dict(tags)).info.run_id)


def mark_failed(run_id: str, tracking_uri: str | None = None) -> None:
    _client(tracking_uri).set_terminated(run_id, status="FAILED")
