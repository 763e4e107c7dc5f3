"""`make ui` starts the Dagster and MLflow servers on loopback and leaves nothing behind on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.ui import group_alive


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode(errors="replace"))
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in time")


def _children_groups(pid: int) -> set[int]:
    out = subprocess.run(
        ["ps", "-o", "pgid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return {int(x) for x in out.stdout.split()}


@pytest.mark.slow
def test_ui_serves_both_apps_and_stops_every_child(dualforce_home: Path, tmp_path: Path) -> None:
    dagster_port, mlflow_port = _free_port(), _free_port()
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.ui",
            "--dagster-port",
            str(dagster_port),
            "--mlflow-port",
            str(mlflow_port),
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=(tmp_path / "ui.log").open("wb"),  # a file, not a pipe: an undrained pipe blocks the servers
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        _wait_http(f"http://127.0.0.1:{dagster_port}/server_info", deadline)
        _wait_http(f"http://127.0.0.1:{mlflow_port}/health", deadline)
        groups = _children_groups(launcher.pid)
        assert len(groups) == 2 and launcher.pid not in groups  # each server in its own group
    finally:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=120)  # each group gets 20 s to stop before SIGKILL
    time.sleep(1.0)
    assert not any(group_alive(g) for g in groups), "a server process group survived Ctrl-C"
    assert (dualforce_home / "dagster" / "dagster.yaml").is_file()
