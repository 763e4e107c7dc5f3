"""A LoRA run killed with SIGKILL while writing a checkpoint, then `--resume auto`: the same losses and
the same adapter as the uninterrupted run (the approach of tests/training/test_kill_resume.py).

The killed and resumed runs see an EMPTY weights folder (weights.root and DUALFORCE_WEIGHTS): had LoRA
training loaded the VAE, HuBERT or LivePortrait, the weights registry would have refused with exit 2.
(Which libraries are imported says nothing: the CLI imports every command module, extraction's too.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dualforce_core.config import config_dir, load_config
from dualforce_core.lora.files import ADAPTER_WEIGHTS, LORA_SUBDIR
from dualforce_core.training.trainer import train
from dualforce_core.weights import WeightsRegistry
from dualforce_core.weights.registry import MissingWeightsError
from tests.lora.lora_fixtures import trained_like_base
from tests.training.feature_tables import write_feature_tables
from tests.training.kill_during_checkpoint import kill_during_checkpoint

LORA_TINY = str(config_dir() / "train" / "lora_tiny.yaml")
OVERRIDES = ["train.max_steps=6", "train.checkpoint_every=2", "train.mlflow=false"]


def _command(run_dir: Path, base_dir: Path, weights: Path, *extra: str) -> list[str]:
    argv = ["train", "--config", LORA_TINY, "--dataset", "ds", "--base-checkpoint", str(base_dir)]
    argv += ["--run-dir", str(run_dir), *extra, *OVERRIDES, f"weights.root={weights}"]
    return [sys.executable, "-m", "dualforce_core.cli.main", *argv]


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["step"], row["train/loss"]) for row in rows]


@pytest.mark.slow
def test_sigkill_then_resume_auto_reproduces_the_lora_run_without_any_pretrained_network(
    tmp_path: Path,
) -> None:
    write_feature_tables("ds", num_clips=2)
    base_dir = trained_like_base().save_pretrained(tmp_path / "base")
    empty = tmp_path / "no_weights"
    empty.mkdir()
    for network in ("wan_vae", "hubert", "liveportrait_motion"):  # what loading any of them would do
        with pytest.raises(MissingWeightsError):
            WeightsRegistry(empty).path(network)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path.cwd()),
        "OMP_NUM_THREADS": "1",
        "DUALFORCE_WEIGHTS": str(empty),
    }
    train(load_config(LORA_TINY, OVERRIDES), "ds", tmp_path / "straight", base_checkpoint=base_dir)

    killed = tmp_path / "killed"
    kill_during_checkpoint(_command(killed, base_dir, empty), env, killed, step=4)
    assert not (killed / "checkpoints" / "step-4").exists() and not (killed / LORA_SUBDIR).exists()

    done = subprocess.run(
        _command(killed, base_dir, empty, "--resume", "auto"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(empty.iterdir()) == []

    straight = dict(_losses(tmp_path / "straight"))
    rows = _losses(killed)
    assert [step for step, _ in rows] == [1, 2, 3, 4, 3, 4, 5, 6]  # resumed from step 2, not the .tmp
    assert all(loss == straight[step] for step, loss in rows)
    resumed = load_file(killed / LORA_SUBDIR / ADAPTER_WEIGHTS)
    reference = load_file(tmp_path / "straight" / LORA_SUBDIR / ADAPTER_WEIGHTS)
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
