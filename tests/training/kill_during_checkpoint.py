"""Start `dualforce train` in a subprocess and SIGKILL it while a checkpoint is half written.

Run as `python -m tests.training.kill_during_checkpoint STEP ARGS...`, this module is `dualforce ARGS...`
that pauses inside the step-STEP checkpoint, between `CheckpointManager.write` (shards and meta are in
`step-STEP.tmp`) and `commit` (the rename): the checkpoint code itself knows nothing of the test.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from unittest import mock

from dualforce_core.cli.main import main
from dualforce_core.training.checkpoint import META_FILE, CheckpointManager

CLI_MODULE = "dualforce_core.cli.main"
PAUSE_S = 120


def kill_during_checkpoint(command: Sequence[str], env: Mapping[str, str], run_dir: Path, step: int) -> None:
    """`command` runs `python -m dualforce_core.cli.main train ...`; that run pauses inside the step-`step`
    checkpoint write (after its shards and meta) and is killed there, leaving `step-N.tmp` behind and
    no `step-N`."""
    at = list(command).index(CLI_MODULE)
    victim = subprocess.Popen(
        [*command[:at], __name__, str(step), *command[at + 1 :]],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    half_written = run_dir / "checkpoints" / f"step-{step}.tmp"
    deadline = time.monotonic() + 240
    while not (half_written / META_FILE).is_file():  # shards and meta written, rename pending
        assert victim.poll() is None, f"the run ended before it reached the step-{step} checkpoint"
        assert time.monotonic() < deadline, f"the run never reached the step-{step} checkpoint"
        time.sleep(0.2)
    victim.kill()
    victim.wait()
    assert half_written.is_dir() and not (run_dir / "checkpoints" / f"step-{step}").exists()


def main_pausing_at(step: int, argv: Sequence[str]) -> int:
    """`dualforce argv...`, sleeping before the step-`step` checkpoint's commit."""
    commit = CheckpointManager.commit

    def pause_then_commit(manager: CheckpointManager, tmp: Path) -> Path:
        if tmp.name == f"step-{step}.tmp":
            time.sleep(PAUSE_S)
        return commit(manager, tmp)

    with mock.patch.object(CheckpointManager, "commit", pause_then_commit):
        return main(argv)


if __name__ == "__main__":
    sys.exit(main_pausing_at(int(sys.argv[1]), sys.argv[2:]))
