"""Resources injected into assets; every setting can be overridden by environment variables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dualforce_core import paths
from dualforce_core.config import DualForceConfig, load_config


class DualForceSettings(dg.ConfigurableResource):
    """Where state lives and which config the stages use (`DUALFORCE_HOME`, `DUALFORCE_CONFIG`)."""

    home: str = ""
    config_path: str = ""
    overrides: list[str] = []

    def data_root(self) -> Path:
        return Path(self.home).resolve() if self.home else paths.home()

    def config(self) -> DualForceConfig:
        return load_config(self.config_path or None, self.overrides)


def default_resources() -> dict[str, object]:
    return {
        "settings": DualForceSettings(
            home=dg.EnvVar("DUALFORCE_HOME").get_value("") or "",
            config_path=dg.EnvVar("DUALFORCE_CONFIG").get_value("") or "",
        )
    }
