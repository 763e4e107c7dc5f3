"""Every test gets its own data root, so nothing leaks between tests or into the working tree."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def dualforce_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dualforce_home"
    monkeypatch.setenv("DUALFORCE_HOME", str(home))
    monkeypatch.delenv("DUALFORCE_WEIGHTS", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home
