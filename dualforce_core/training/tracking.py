"""What a training run reports: a JSONL line per step in the run dir (always) and MLflow (rank 0).

The JSONL file is the ground truth a test or a person can diff between runs; MLflow is the browsable
copy. A run dir remembers its MLflow run id, so a resumed run keeps logging into the same MLflow run;
`MLFLOW_RUN_ID` (set by the Dagster launcher) wins over both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dualforce_core import paths

METRICS_FILE = "metrics.jsonl"
RUN_ID_FILE = "mlflow_run_id"


class RunLogger:
    """Rank 0's reporter; on other ranks every method is a no-op."""

    def __init__(
        self, run_dir: Path, enabled: bool, use_mlflow: bool, experiment: str, run_name: str
    ) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.run_id: str | None = None
        self._mlflow: Any = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = run_dir / METRICS_FILE
        if use_mlflow:
            self._start_mlflow(experiment, run_name)

    def _start_mlflow(self, experiment: str, run_name: str) -> None:
        import mlflow  # imported here: a run without MLflow should not pay for it

        mlflow.set_tracking_uri(paths.mlflow_tracking_uri())
        run_id = os.environ.get("MLFLOW_RUN_ID")
        saved = self.run_dir / RUN_ID_FILE
        if not run_id and saved.is_file():
            run_id = saved.read_text().strip()
        if run_id:
            # The run's own experiment becomes the active one: a long-lived process (Dagster) may have
            # set another, and MLflow refuses to resume a run outside the active experiment.
            mlflow.set_experiment(experiment_id=mlflow.MlflowClient().get_run(run_id).info.experiment_id)
            active = mlflow.start_run(run_id=run_id)
        else:
            if mlflow.get_experiment_by_name(experiment) is None:
                mlflow.create_experiment(experiment, artifact_location=paths.mlflow_artifact_root())
            mlflow.set_experiment(experiment)
            active = mlflow.start_run(run_name=run_name)
        self.run_id = active.info.run_id
        saved.write_text(self.run_id + "\n")
        self._mlflow = mlflow

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self._mlflow is None:
            return
        client = self._mlflow.MlflowClient()
        logged = client.get_run(self.run_id).data.params
        fresh = {k: str(v)[:6000] for k, v in params.items() if k not in logged}
        if fresh:  # a resumed run must not re-log (MLflow refuses changed params)
            self._mlflow.log_params(fresh)

    def log_step(self, step: int, metrics: Mapping[str, float], to_mlflow: bool) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if to_mlflow and self._mlflow is not None:
            self._mlflow.log_metrics(dict(metrics), step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self._mlflow is not None:
            self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_artifacts(self, directory: Path, artifact_path: str) -> None:
        if self._mlflow is not None:
            self._mlflow.log_artifacts(str(directory), artifact_path)

    def register_model(self, artifact_path: str, name: str) -> int | None:
        """Register the logged directory `artifact_path` as a new version of model `name`."""
        if self._mlflow is None:
            return None
        client = self._mlflow.MlflowClient()
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        source = f"{self._mlflow.get_artifact_uri(artifact_path)}"
        version = client.create_model_version(name, source, run_id=self.run_id)
        return int(version.version)

    def close(self) -> None:
        if self._mlflow is not None:
            self._mlflow.end_run()
            self._mlflow = None
