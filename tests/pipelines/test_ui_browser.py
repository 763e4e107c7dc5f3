"""The Dagster UI, as a person sees it: the asset graph page in headless Chromium names every asset."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.ui import dagster_command, prepare_dagster_home, start_group, stop_group

CHROMIUM = "/usr/bin/chromium"
GROUP_URL = "/locations/__repository__@definitions.py/asset-groups/{group}"
ASSETS_BY_GROUP = {
    "data": (
        "raw_videos", "clips", "rejects", "audio_features", "struct_features", "flame_params", "video_latents",
    ),
    "training": ("training_set", "dualforce_checkpoint"),
    "evaluation": ("evaluation",),
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in time")


def _chromium(profile: Path, url: str, *action: str) -> subprocess.CompletedProcess[str]:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1600,1000",
        "--virtual-time-budget=20000", *action, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_asset_graph_pages_name_every_asset(dualforce_home: Path, tmp_path: Path) -> None:
    """Each group's graph page (the global lineage page shows groups collapsed) lists its assets."""
    assert shutil.which(CHROMIUM), "chromium is not installed (make system-deps)"
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home())}
    server = start_group(dagster_command("127.0.0.1", port), env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        _wait_http(f"{base}/server_info", deadline)
        for group, assets in ASSETS_BY_GROUP.items():
            url = base + GROUP_URL.format(group=group)
            missing = list(assets)
            while missing and time.monotonic() < deadline:  # the code location loads after the server
                dom = _chromium(tmp_path / "profile", url, "--dump-dom").stdout
                missing = [name for name in assets if name not in dom]
            assert not missing, f"{url} lacks {missing}"
        screenshot = tmp_path / "asset_graph_data.png"
        _chromium(tmp_path / "profile", base + GROUP_URL.format(group="data"), f"--screenshot={screenshot}")
        assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    finally:
        stop_group(server)
