"""Typed configuration loaded from YAML under `configs/` with dotted overrides."""

from dualforce_core.config.loader import ConfigError, config_dir, dump_config, flatten, load_config
from dualforce_core.config.schema import DualForceConfig

__all__ = ["ConfigError", "DualForceConfig", "config_dir", "dump_config", "flatten", "load_config"]
