"""Where the pretrained networks live: one folder, with optional per-component overrides."""

from __future__ import annotations

from dualforce_core.config_model import ConfigModel


class WeightsConfig(ConfigModel):
    root: str | None = None
    paths: dict[str, str] = {}
