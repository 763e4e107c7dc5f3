"""`dualforce train` killed with SIGKILL while writing a checkpoint, then `--resume auto`: same losses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualforce_core.config import config_dir, load_config
from dualforce_core.training.checkpoint import PAUSE_ENV
from dualforce_core.training.trainer import train
from tests.training.feature_tables import write_feature_tables

TINY = str(config_dir() / "train" / "tiny.yaml")


def _command(run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dualforce_core.cli.main",
        "train",
        "--config",
        TINY,
        "--dataset",
        "ds",
        "--max-steps",
        "6",
        "--checkpoint-every",
        "2",
        "--run-dir",
        str(run_dir),
        *extra,
        "train.mlflow=false",
    ]


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["step"], row["train/loss"]) for row in rows]


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_then_resume_auto_matches_uninterrupted(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=5)
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    # The reference runs in this process (same code, one thread like the subprocesses): saves a startup.
    train(
        load_config(TINY, ["train.max_steps=6", "train.checkpoint_every=2", "train.mlflow=false"]),
        "ds",
        tmp_path / "straight",
    )

    killed = tmp_path / "killed"
    victim = subprocess.Popen(
        _command(killed),
        env={**env, PAUSE_ENV: "4:120"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    half_written = killed / "checkpoints" / "step-4.tmp"
    deadline = time.monotonic() + 240
    while not (half_written / "meta.json").is_file():  # shards and meta written, rename pending
        assert victim.poll() is None, "the run ended before it reached the step-4 checkpoint"
        assert time.monotonic() < deadline, "the run never reached the step-4 checkpoint"
        time.sleep(0.2)
    victim.kill()
    victim.wait()
    assert half_written.is_dir() and not (killed / "checkpoints" / "step-4").exists()
    assert (killed / "checkpoints" / "step-2" / "meta.json").is_file()

    _run(_command(killed, "--resume", "auto"), env)
    straight = dict(_losses(tmp_path / "straight"))
    rows = _losses(killed)
    assert [step for step, _ in rows] == [1, 2, 3, 4, 3, 4, 5, 6]  # resumed from step 2, not the .tmp
    assert all(loss == straight[step] for step, loss in rows)
    assert not half_written.exists() and (killed / "checkpoints" / "step-6" / "meta.json").is_file()
