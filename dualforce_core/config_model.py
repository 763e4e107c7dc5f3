"""The one base class for every config section: unknown keys are errors, not silently ignored.

It lives outside `dualforce_core.config` so that each domain package can define its section without
importing the loader (which imports every section).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
