"""Resources injected into assets; every setting can be overridden by an environment variable.

`settings`: the data root (`DUALFORCE_HOME`), config (`DUALFORCE_CONFIG`), weights (`DUALFORCE_WEIGHTS`)
and the reject-rate gate (`DUALFORCE_MAX_REJECT_RATE`). `compute`: device and processes per training
launch (`DUALFORCE_DEVICE`, `DUALFORCE_NPROC`). `mlflow`: the tracking store (`MLFLOW_TRACKING_URI`).
`pipes_client`: launches training out of process.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from dualforce_core import paths
from dualforce_core.config import DualForceConfig, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_ENV = "DUALFORCE_CONFIG"
# Every variable the code location reads: deployments (docker/, docker/k8s/) forward exactly these to runs.
FORWARDED_ENV = (
    paths.HOME_ENV,
    paths.WEIGHTS_ENV,
    CONFIG_ENV,
    "DUALFORCE_MAX_REJECT_RATE",
    "DUALFORCE_DEVICE",
    "DUALFORCE_NPROC",
    "MLFLOW_TRACKING_URI",
)


class DualForceSettings(dg.ConfigurableResource):
    """Where state lives and which config the stages use; an empty field means "from the environment at run
    time", so one code location follows whatever `DUALFORCE_HOME` a run is started with."""

    home: str = ""
    config_path: str = ""
    overrides: list[str] = []
    weights_root: str = ""
    max_reject_rate: float = 0.5  # the `clips` check fails above this share of rejected files
    progress: bool = False  # per-file and per-batch progress on stderr (the demo turns it on)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """The core reads the data root and weights from the environment: make it agree with this resource."""
        if self.home:
            os.environ[paths.HOME_ENV] = str(Path(self.home).resolve())
        if self.weights_root:
            os.environ[paths.WEIGHTS_ENV] = str(Path(self.weights_root).resolve())

    def data_root(self) -> Path:
        return Path(self.home).resolve() if self.home else paths.home()

    def all_overrides(self) -> list[str]:
        return [*self.overrides, *([f"weights.root={self.weights_root}"] if self.weights_root else [])]

    def resolved_config_path(self) -> str | None:
        return self.config_path or os.environ.get(CONFIG_ENV) or None

    def config(self) -> DualForceConfig:
        return load_config(self.resolved_config_path(), self.all_overrides())


class ComputeSettings(dg.ConfigurableResource):
    """Where the networks run: `device` for extraction and training, `nproc` processes per training launch
    (more than one runs the trainer under `torchrun`)."""

    device: str = "cpu"
    nproc: int = 1


class MlflowSettings(dg.ConfigurableResource):
    tracking_uri: str = ""

    def uri(self) -> str:
        return self.tracking_uri or paths.mlflow_tracking_uri()


def _env(name: str) -> str:
    return dg.EnvVar(name).get_value("") or ""


def default_resources() -> dict[str, object]:
    return {
        "settings": DualForceSettings(max_reject_rate=float(_env("DUALFORCE_MAX_REJECT_RATE") or 0.5)),
        "compute": ComputeSettings(
            device=_env("DUALFORCE_DEVICE") or "cpu", nproc=int(_env("DUALFORCE_NPROC") or 1)
        ),
        "mlflow": MlflowSettings(tracking_uri=_env("MLFLOW_TRACKING_URI")),
        "pipes_client": dg.PipesSubprocessClient(cwd=str(REPO_ROOT)),
    }
