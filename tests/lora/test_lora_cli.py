"""`dualforce lora info` and `dualforce lora merge` on a real adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dualforce_core.cli.main import main
from dualforce_core.lora.files import ADAPTER_WEIGHTS, config_hash
from dualforce_core.models import DualForceModel
from tests.lora.lora_fixtures import TrainedAdapter, model_inputs


def test_info_table(trained: TrainedAdapter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lora", "info", str(trained.adapter_dir)]) == 0
    out = capsys.readouterr().out
    size = (trained.adapter_dir / ADAPTER_WEIGHTS).stat().st_size
    assert "rank / alpha         4 / 4" in out
    assert "audio_attn, bridge, self_attn (40 Linear layers)" in out
    assert f"{size:,} bytes" in out
    assert "base preset          tiny" in out


def test_info_json(trained: TrainedAdapter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lora", "info", str(trained.adapter_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    base = DualForceModel.from_pretrained(trained.base_dir)
    assert info["base_config_sha256"] == config_hash(base.config)
    assert info["parameters"] == trained.trainable
    assert info["base_checkpoint"] == str(trained.base_dir.resolve())


def test_merge_at_half_scale(
    trained: TrainedAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged"
    argv = ["lora", "merge", "--checkpoint", str(trained.base_dir), "--lora", str(trained.adapter_dir)]
    assert main([*argv, "--out", str(out), "--scale", "0.5"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    merged = DualForceModel.from_pretrained(out)
    with torch.no_grad():
        video = merged(**model_inputs(trained.batch)).video
    assert not torch.equal(video, trained.base_video) and not torch.equal(video, trained.trained_video)
