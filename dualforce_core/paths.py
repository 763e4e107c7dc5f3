"""One data root for all state, so a run is reproducible from a single directory.

`DUALFORCE_HOME` (default `.dualforce/` in the working directory) holds the Lance tables, the MLflow
store, checkpoints, reports and the Dagster home. `DUALFORCE_WEIGHTS` (default `$DUALFORCE_HOME/weights`)
holds the pretrained networks.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "DUALFORCE_HOME"
WEIGHTS_ENV = "DUALFORCE_WEIGHTS"


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".dualforce").resolve()


def weights_dir() -> Path:
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env).resolve() if env else home() / "weights"


def lance_dir() -> Path:
    return home() / "lance"


def table_uri(table: str) -> str:
    """Where a Lance table lives: `$DUALFORCE_HOME/lance/<table>.lance`, openable with `lance.dataset()`."""
    return str(lance_dir() / f"{table}.lance")


def raw_dir() -> Path:
    """Dataset folders dropped here (`raw/<dataset>/`) become Dagster partitions."""
    return home() / "raw"


def runs_dir() -> Path:
    return home() / "runs"


def reports_dir() -> Path:
    return home() / "reports"


def dagster_home() -> Path:
    return home() / "dagster"


def mlflow_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` wins; otherwise a sqlite store inside the data root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return str(home() / "mlartifacts")
