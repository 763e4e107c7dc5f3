"""Start `dualforce train` in a subprocess and SIGKILL it while a checkpoint is half written."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from dualforce_core.training.checkpoint import PAUSE_ENV


def kill_during_checkpoint(command: Sequence[str], env: Mapping[str, str], run_dir: Path, step: int) -> None:
    """The run pauses inside the step-`step` checkpoint write (after its shards and meta) and is killed
    there, leaving `step-N.tmp` behind and no `step-N`."""
    victim = subprocess.Popen(
        list(command),
        env={**env, PAUSE_ENV: f"{step}:120"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    half_written = run_dir / "checkpoints" / f"step-{step}.tmp"
    deadline = time.monotonic() + 240
    while not (half_written / "meta.json").is_file():  # shards and meta written, rename pending
        assert victim.poll() is None, f"the run ended before it reached the step-{step} checkpoint"
        assert time.monotonic() < deadline, f"the run never reached the step-{step} checkpoint"
        time.sleep(0.2)
    victim.kill()
    victim.wait()
    assert half_written.is_dir() and not (run_dir / "checkpoints" / f"step-{step}").exists()
