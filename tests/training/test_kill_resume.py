"""`dualforce train` killed with SIGKILL while writing a checkpoint, then `--resume auto`: same losses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualforce_core.config import config_dir, load_config
from dualforce_core.training.trainer import train
from tests.training.feature_tables import write_feature_tables
from tests.training.kill_during_checkpoint import kill_during_checkpoint

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
    kill_during_checkpoint(_command(killed), env, killed, step=4)
    assert (killed / "checkpoints" / "step-2" / "meta.json").is_file()

    _run(_command(killed, "--resume", "auto"), env)
    straight = dict(_losses(tmp_path / "straight"))
    rows = _losses(killed)
    assert [step for step, _ in rows] == [1, 2, 3, 4, 3, 4, 5, 6]  # resumed from step 2, not the .tmp
    assert all(loss == straight[step] for step, loss in rows)
    assert not (killed / "checkpoints" / "step-4.tmp").exists()
    assert (killed / "checkpoints" / "step-6" / "meta.json").is_file()
