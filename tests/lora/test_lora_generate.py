"""`dualforce generate --checkpoint BASE --lora DIR --lora-scale S`: the adapter merged before streaming."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dualforce_core.cli.main import main
from dualforce_core.lora.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from dualforce_core.weights import init_random
from tests.inference.test_generate_cli import portrait, speech
from tests.lora.lora_fixtures import TrainedAdapter


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Stand-in VAE/HuBERT/LivePortrait, a portrait and 0.5 s of speech, as generate arguments (the
    weights.root override last)."""
    root = tmp_path_factory.mktemp("generate")
    init_random(root / "weights", names=["wan_vae", "hubert", "liveportrait_motion"])
    image, audio = portrait(root / "face.png"), speech(root / "speech.wav", 0.5)
    return ["--image", str(image), "--audio", str(audio), "--no-progress", f"weights.root={root / 'weights'}"]


def _generate(trained: TrainedAdapter, inputs: list[str], out: Path, *lora: str) -> int:
    argv = ["generate", "--checkpoint", str(trained.base_dir), *lora, *inputs[:-1], "--out", str(out)]
    argv += ["--save-latents", str(out.with_suffix(".safetensors"))]
    return main([*argv, inputs[-1], "inference.size=32", "inference.steps=1"])  # config overrides last


def test_scale_0_is_the_base_exactly_and_scale_1_is_not(
    trained: TrainedAdapter, inputs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = ["--lora", str(trained.adapter_dir)]
    assert _generate(trained, inputs, tmp_path / "base.mp4") == 0
    assert _generate(trained, inputs, tmp_path / "zero.mp4", *adapter, "--lora-scale", "0") == 0
    assert _generate(trained, inputs, tmp_path / "one.mp4", *adapter) == 0
    assert f"LoRA adapter {trained.adapter_dir} merged at scale 1" in capsys.readouterr().err
    base, zero, one = (load_file(tmp_path / f"{n}.safetensors") for n in ("base", "zero", "one"))
    assert all(torch.equal(zero[k], base[k]) for k in base)
    assert not torch.equal(one["video_latents"], base["video_latents"])


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("corrupt weights", "is corrupt or not a safetensors file"),
        ("another preset", "trained on preset 'small'"),
        ("missing dir", "does not exist"),
        ("scale without adapter", "--lora-scale scales a LoRA adapter"),
    ],
)
def test_bad_adapter_is_one_clear_error(
    trained: TrainedAdapter,
    inputs: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    needle: str,
) -> None:
    adapter = tmp_path / "adapter"
    shutil.copytree(trained.adapter_dir, adapter)
    lora = ["--lora", str(adapter)]
    if case == "corrupt weights":
        (adapter / ADAPTER_WEIGHTS).write_bytes(b"\x00" * 64)
    elif case == "another preset":
        config = json.loads((adapter / ADAPTER_CONFIG).read_text())
        config["dualforce"]["preset"] = "small"
        (adapter / ADAPTER_CONFIG).write_text(json.dumps(config))
    elif case == "missing dir":
        lora = ["--lora", str(tmp_path / "nowhere")]
    else:
        lora = ["--lora-scale", "0.5"]
    assert _generate(trained, inputs, tmp_path / "out.mp4", *lora) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not (tmp_path / "out.mp4").exists()
