"""`make ui`: the Dagster UI (webserver + daemon) and the MLflow UI on loopback, stopped cleanly.

`dagster dev` and `mlflow server` leave worker children behind when only the parent is killed, so each is
started in its own process group and the whole group is stopped on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dualforce_core import paths

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER_INSTANCE_YAML = """\
# Local Dagster instance for DualForce (written by `make ui` when missing).
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
nux:
  enabled: false
"""


def prepare_dagster_home() -> Path:
    """`$DUALFORCE_HOME/dagster` as DAGSTER_HOME, with an instance file limiting GPU-pool concurrency."""
    home = paths.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    instance = home / "dagster.yaml"
    if not instance.exists():
        instance.write_text(DAGSTER_INSTANCE_YAML)
    return home


def start_group(command: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `command` as the leader of a new process group (so `stop_group` reaches every child)."""
    return subprocess.Popen(list(command), cwd=REPO_ROOT, env=env, start_new_session=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the whole group and wait until every member is gone; SIGKILL what is left after `timeout`."""
    pgid = process.pid
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None and not group_alive(pgid):
            return
        time.sleep(0.2)
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


def dagster_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
        "-h",
        host,
        "-p",
        str(port),
    ]


def mlflow_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
        "--backend-store-uri", paths.mlflow_tracking_uri(), "--default-artifact-root", paths.mlflow_artifact_root(),
    ]  # fmt: skip


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the Dagster UI and the MLflow UI on loopback until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dagster-port", type=int, default=3000)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)

    env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home()), "DUALFORCE_HOME": str(paths.home())}
    paths.home().mkdir(parents=True, exist_ok=True)
    processes = [
        start_group(dagster_command(args.host, args.dagster_port), env),
        start_group(mlflow_command(args.host, args.mlflow_port), env),
    ]
    print(
        f"Dagster UI: http://{args.host}:{args.dagster_port}   MLflow UI: http://{args.host}:{args.mlflow_port}"
    )
    print("Ctrl-C stops both.")
    # Explicit handlers: a launcher started by a process that ignores SIGINT (as Dagster's in-process
    # execution leaves it) would otherwise inherit SIG_IGN and never stop on Ctrl-C.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            stop_group(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
