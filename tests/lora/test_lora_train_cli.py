"""`dualforce train --base-checkpoint` on a LoRA config: the base stays untouched, the adapter is exported.

Runs the real command on Lance feature tables of one identity (two clips of the synthetic person).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from safetensors.torch import load_file
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.tensor import DTensor

from dualforce_core import paths
from dualforce_core.cli.main import main
from dualforce_core.config import config_dir, load_config
from dualforce_core.errors import UserError
from dualforce_core.lora.files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    LORA_SUBDIR,
    load_adapter,
    read_adapter_info,
)
from dualforce_core.models import DualForceModel
from dualforce_core.models.model import WEIGHTS_FILE
from dualforce_core.training.tracking import RUN_ID_FILE
from dualforce_core.training.trainer import Trainer, train
from tests.lora.lora_fixtures import trained_like_base
from tests.training.feature_tables import write_feature_tables

LORA_TINY = str(config_dir() / "train" / "lora_tiny.yaml")
TINY = str(config_dir() / "train" / "tiny.yaml")
STEPS = 16


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.slow  # a real LoRA training run through the CLI: ~11 s
def test_lora_run_leaves_the_base_bit_identical_and_exports_a_small_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_feature_tables("ds", num_clips=2)
    base_dir = trained_like_base().save_pretrained(tmp_path / "base")
    before = _snapshot(base_dir)
    argv = ["train", "--config", LORA_TINY, "--dataset", "ds", "--base-checkpoint", str(base_dir)]
    assert main([*argv, "--max-steps", str(STEPS), "train.log_every=1", "train.checkpoint_every=0"]) == 0
    run_dir = paths.runs_dir() / "lora_tiny"  # its own train.name, not the tiny base run's folder
    assert f"LoRA adapter {run_dir / LORA_SUBDIR}" in capsys.readouterr().out

    assert _snapshot(base_dir) == before
    # The frozen base inside the final training checkpoint is the base, bit for bit.
    dcp_to_torch_save(run_dir / "checkpoints" / f"step-{STEPS}", tmp_path / "state.pt")
    saved_train = torch.load(tmp_path / "state.pt", weights_only=True)["train"]
    state, ema = saved_train["model"], saved_train["ema"]
    base = load_file(base_dir / WEIGHTS_FILE)
    saved = {k.removeprefix("model.").replace(".base_layer.", "."): v for k, v in state.items()}
    assert all(torch.equal(saved[k], v) for k, v in base.items())
    # The EMA tracks the adapters (and the loss heads): no copy of the frozen base.
    assert {k for k in ema if k.startswith("shadow.model.")} == {
        "shadow." + k for k in state if k.startswith("model.") and ".lora_" in k
    }

    adapter = run_dir / LORA_SUBDIR
    weights = load_file(adapter / ADAPTER_WEIGHTS)
    assert any(bool(v.abs().sum() > 0) for k, v in weights.items() if "lora_B" in k)  # it trained
    size, base_size = (adapter / ADAPTER_WEIGHTS).stat().st_size, (base_dir / WEIGHTS_FILE).stat().st_size
    assert size < 0.06 * base_size
    assert json.loads((adapter / "training.json").read_text())["step"] == STEPS
    load_adapter(DualForceModel.from_pretrained(base_dir), adapter)  # fits its base
    assert json.loads((adapter / ADAPTER_CONFIG).read_text())["r"] == 4

    losses = [json.loads(line)["train/loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == STEPS
    assert sum(losses[-4:]) / 4 < 0.9 * sum(losses[:4]) / 4  # one identity: the loss falls

    client = mlflow.MlflowClient(paths.mlflow_tracking_uri())
    run = client.get_run((run_dir / RUN_ID_FILE).read_text().strip())
    params = run.data.params
    assert (params["lora.rank"], params["lora.alpha"], params["lora.targets"]) == (
        "4",
        "4.0",
        "['self_attn', 'bridge', 'audio_attn']",
    )
    assert params["lora.trainable_parameters"] == str(read_adapter_info(adapter).parameters) == "20480"
    assert params["lora.adapter_bytes"] == str(20480 * 4)
    assert params["lora.base_checkpoint"] == str(base_dir.resolve())
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id, "lora")}
    assert {f"lora/{ADAPTER_WEIGHTS}", f"lora/{ADAPTER_CONFIG}"} <= artifacts
    assert [v.run_id for v in client.search_model_versions("name = 'dualforce-lora'")] == [run.info.run_id]


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("no base", "pass --base-checkpoint DIR"),
        ("base on a full run", "--base-checkpoint is only for LoRA runs"),
        ("another model", "differing fields: video_layers"),
        ("8-bit Adam on CPU", "adamw8bit runs bitsandbytes' CUDA kernels"),
    ],
)
def test_bad_lora_runs_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, needle: str
) -> None:
    write_feature_tables("ds", num_clips=2)
    base_dir = trained_like_base(video_layers=1).save_pretrained(tmp_path / "base")
    config, base, extra = LORA_TINY, ["--base-checkpoint", str(base_dir)], ["model.video_layers=1"]
    if case == "no base":
        base = []
    elif case == "base on a full run":
        config = TINY
    elif case == "another model":
        extra = []
    else:
        extra.append("train.optimizer=adamw8bit")
    argv = ["train", "--config", config, "--dataset", "ds", "--run-dir", str(tmp_path / "run"), *base]
    assert main([*argv, "--max-steps", "1", *extra, "train.mlflow=false"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "run" / LORA_SUBDIR).exists()


def test_a_checkpoint_resumes_only_with_the_same_lora_section(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=2)
    base_dir = trained_like_base().save_pretrained(tmp_path / "base")
    overrides = ["train.max_steps=1", "train.mlflow=false"]
    train(load_config(LORA_TINY, overrides), "ds", tmp_path / "lora", base_checkpoint=base_dir)
    wider = load_config(LORA_TINY, [*overrides, "lora.rank=8"])
    with pytest.raises(UserError, match=r"written with lora=.*'rank': 4.*this run has lora=.*'rank': 8"):
        Trainer(wider, "ds", tmp_path / "lora", "auto", base_dir)
    with pytest.raises(UserError, match=r"this run has lora=\{'enabled': False"):
        Trainer(load_config(TINY, overrides), "ds", tmp_path / "lora", "auto")


def test_optimizer_cpu_offload_keeps_optimizer_state_on_the_cpu_and_resumes(tmp_path: Path) -> None:
    """One process, FSDP2's CPUOffloadPolicy over a one-rank group (on a CPU machine: the code path)."""
    write_feature_tables("ds", num_clips=2)
    base_dir = trained_like_base().save_pretrained(tmp_path / "base")
    overrides = ["train.mlflow=false", "train.optimizer_cpu_offload=true", "train.checkpoint_every=1"]
    for steps, resume in ((1, None), (2, "auto")):
        config = load_config(LORA_TINY, [*overrides, f"train.max_steps={steps}"])
        trainer = Trainer(config, "ds", tmp_path / "run", resume, base_dir)
        try:
            result = trainer.fit()
            assert all(isinstance(p, DTensor) and p.device.type == "cpu" for p in trainer.trainable)
            moments = [t for s in trainer.optimizer.state.values() for k, t in s.items() if k != "step"]
            assert len(moments) == 2 * len(trainer.trainable)
            assert all(t.device.type == "cpu" for t in moments)
        finally:
            trainer.close()
    assert result.step == 2 and result.lora_dir is not None and (result.lora_dir / ADAPTER_WEIGHTS).is_file()
