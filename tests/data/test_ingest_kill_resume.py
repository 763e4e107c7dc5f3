"""`dualforce ingest` killed with SIGKILL mid-run loses at most the batch it was filling: running the same
command again skips what was committed and ends with every clip, reject and ledger row exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from dualforce_core import paths
from dualforce_core.data import lance_store
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from tests.data.ingest_fixtures import write_batch_corpus

pytestmark = pytest.mark.slow  # one ingest in process and two through the CLI (its imports ~10 s each)

CONFIG = DataConfig(size=32, clip_frames=9, clip_stride=8, commit_every=2)
ARGS = ["data.size=32", "data.clip_frames=9", "data.clip_stride=8", "data.commit_every=2", "--workers", "2"]
KEYS = {"clips": "clip_id", "rejects": "reject_id", "sources": "source_id"}
TIMES = {"clips": "ingested_at", "rejects": "time", "sources": "time"}


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dualforce")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dualforce_core.cli.main"]


def _tables() -> dict[str, pa.Table]:
    return {name: lance_store.read_rows(name).drop([TIMES[name]]).sort_by(key) for name, key in KEYS.items()}


def _ids(table: pa.Table, name: str) -> list[str]:
    return [str(value) for value in table.column(KEYS[name]).to_pylist()]


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == str(pid):
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def test_sigkill_mid_run_then_rerun_has_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "raw"
    write_batch_corpus(src, good=10, seconds=2.0)
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "uninterrupted"))
    reference = ingest_dataset("scale", src, CONFIG, progress=False)
    expected = _tables()
    assert reference.batches_committed == 6 and expected["clips"].num_rows == reference.clips_written

    home = tmp_path / "home"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    env = {**os.environ, paths.HOME_ENV: str(home)}
    command = [*_cli(), "ingest", "--dataset", "scale", "--src", str(src), *ARGS]

    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(300, run.kill)  # a hung run fails the test instead of blocking it
    guard.start()
    progress: list[str] = []
    workers: list[int] = []
    try:
        assert run.stderr is not None
        for line in run.stderr:
            progress.append(line)
            if line.startswith("committed batch 1:"):  # printed once the batch is in all three tables
                workers = _children(run.pid)
                run.send_signal(signal.SIGKILL)
                break
        run.wait()
    finally:
        guard.cancel()
    assert run.returncode == -signal.SIGKILL, "".join(progress)

    committed = _tables()
    done = _ids(committed["sources"], "sources")
    assert 2 <= len(done) < expected["sources"].num_rows  # at least batch 1, and killed well before the end
    for name, table in committed.items():
        ids = _ids(table, name)
        assert len(ids) == len(set(ids)) and set(ids) <= set(_ids(expected[name], name)), name

    # The spawned workers notice that their parent is gone and exit by themselves.
    assert len(workers) >= 2
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_running(pid) for pid in workers)

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    skipped = re.search(r"(\d+) unchanged since an earlier run \(skipped\)", again.stdout)
    assert skipped and int(skipped.group(1)) == len(done), again.stdout
    assert "Traceback" not in again.stderr

    final = _tables()
    for name, table in final.items():
        ids = _ids(table, name)
        assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
        assert table.equals(expected[name]), f"{name}: rows differ from the uninterrupted run"
