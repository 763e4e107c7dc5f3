"""A wrong or damaged adapter is one clear error (CLI: exit 2, no traceback), and leaves the model as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from dualforce_core.cli.main import main
from dualforce_core.errors import UserError
from dualforce_core.lora.adapter import adapter_names, apply_lora
from dualforce_core.lora.config import LoraConfig, target_pattern
from dualforce_core.lora.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapter, load_base, save_adapter
from dualforce_core.models import DualForceModel
from dualforce_core.models.model import CONFIG_FILE
from tests.lora.lora_fixtures import LORA, TrainedAdapter, trained_like_base


def adapter_for(model: DualForceModel, out: Path) -> Path:
    apply_lora(model, LORA)
    return save_adapter(model, out)


def copy_adapter(trained: TrainedAdapter, out: Path) -> Path:
    return Path(shutil.copytree(trained.adapter_dir, out))


def cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


def test_adapter_from_another_preset(trained: TrainedAdapter, tmp_path: Path) -> None:
    torch.manual_seed(0)
    other = adapter_for(DualForceModel.from_preset("small"), tmp_path / "small_adapter")
    model = DualForceModel.from_pretrained(trained.base_dir)
    with pytest.raises(UserError, match="trained on preset 'small', but this model is preset 'tiny'"):
        load_adapter(model, other)
    assert adapter_names(model) == []
    assert not any("lora" in k for k in model.state_dict())


def test_adapter_from_another_base_names_the_differing_fields(
    trained: TrainedAdapter, tmp_path: Path
) -> None:
    other = adapter_for(trained_like_base(video_layers=3), tmp_path / "deeper")
    model = DualForceModel.from_pretrained(trained.base_dir)
    with pytest.raises(UserError, match=r"another base model .*differing fields: video_layers"):
        load_adapter(model, other)


def test_attention_backend_does_not_change_the_base_identity(trained: TrainedAdapter) -> None:
    model = DualForceModel.from_pretrained(trained.base_dir)
    model.set_attention_backend("flex")
    load_adapter(model, trained.adapter_dir)
    assert adapter_names(model) == ["default"]


def test_run_config_must_describe_the_base_checkpoint(trained: TrainedAdapter, tmp_path: Path) -> None:
    deeper = trained_like_base(video_layers=3).config
    with pytest.raises(UserError, match="differing fields: video_layers"):
        load_base(trained.base_dir, deeper)
    # A base saved when the backend was still model config (here flash) loads under the run's config,
    # and runs with the run's backend, not the checkpoint's.
    old_base = Path(shutil.copytree(trained.base_dir, tmp_path / "old_base"))
    saved = json.loads((old_base / CONFIG_FILE).read_text())
    (old_base / CONFIG_FILE).write_text(json.dumps({**saved, "attention_backend": "flash"}))
    run_config = DualForceModel.from_pretrained(trained.base_dir).config
    model = load_base(old_base, run_config)
    model.set_attention_backend("flex")
    assert model.attention_backend == "flex"
    reference = DualForceModel.from_pretrained(trained.base_dir).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())


def test_truncated_weights_file(trained: TrainedAdapter, tmp_path: Path) -> None:
    bad = copy_adapter(trained, tmp_path / "bad")
    data = (bad / ADAPTER_WEIGHTS).read_bytes()
    (bad / ADAPTER_WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupt"):
        load_adapter(DualForceModel.from_pretrained(trained.base_dir), bad)


def test_garbled_config_and_missing_files(trained: TrainedAdapter, tmp_path: Path) -> None:
    bad = copy_adapter(trained, tmp_path / "bad")
    (bad / ADAPTER_CONFIG).write_text('{"r": 4,')
    with pytest.raises(UserError, match="corrupt"):
        load_adapter(DualForceModel.from_pretrained(trained.base_dir), bad)
    (bad / ADAPTER_CONFIG).unlink()
    with pytest.raises(UserError, match=r"adapter_config\.json is missing"):
        load_adapter(DualForceModel.from_pretrained(trained.base_dir), bad)
    with pytest.raises(UserError, match="does not exist"):
        load_adapter(DualForceModel.from_pretrained(trained.base_dir), tmp_path / "nowhere")


def test_weights_that_do_not_fit_the_config(trained: TrainedAdapter, tmp_path: Path) -> None:
    """A rank-8 file under a rank-4 config (e.g. a file copied over from another adapter)."""
    model = DualForceModel.from_pretrained(trained.base_dir)
    apply_lora(model, LoraConfig(rank=8, alpha=8.0))
    wider = save_adapter(model, tmp_path / "wider")
    bad = copy_adapter(trained, tmp_path / "bad")
    shutil.copy(wider / ADAPTER_WEIGHTS, bad / ADAPTER_WEIGHTS)
    with pytest.raises(UserError, match="wrong shapes"):
        load_adapter(DualForceModel.from_pretrained(trained.base_dir), bad)


def test_a_second_adapter_under_a_taken_name(trained: TrainedAdapter) -> None:
    model = load_adapter(DualForceModel.from_pretrained(trained.base_dir), trained.adapter_dir)
    with pytest.raises(UserError, match="already loaded"):
        load_adapter(model, trained.adapter_dir)


def test_unknown_target_group() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown LoRA target group\(s\) \['mlp'\]; known groups: self_attn"
    ):
        LoraConfig(targets=["self_attn", "mlp"])
    with pytest.raises(UserError, match="unknown LoRA target group"):
        target_pattern(["attn"])


def test_group_absent_from_this_model() -> None:
    model = trained_like_base()  # no text cross-attention
    with pytest.raises(UserError, match="match no layer of this model"):
        apply_lora(model, LoraConfig(targets=["text_attn"]))


def test_cli_merge_with_another_presets_adapter(
    trained: TrainedAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    other = adapter_for(DualForceModel.from_preset("small"), tmp_path / "small_adapter")
    argv = ["lora", "merge", "--checkpoint", str(trained.base_dir), "--lora", str(other)]
    err = cli_error(capsys, [*argv, "--out", str(tmp_path / "merged")])
    assert err.startswith("dualforce lora: error: LoRA adapter") and "preset 'small'" in err
    assert not (tmp_path / "merged").exists()


def test_cli_on_a_corrupt_adapter(
    trained: TrainedAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = copy_adapter(trained, tmp_path / "bad")
    (bad / ADAPTER_WEIGHTS).write_bytes(b"\x00" * 64)
    assert "corrupt" in cli_error(capsys, ["lora", "info", str(bad)])
    argv = [
        "lora",
        "merge",
        "--checkpoint",
        str(trained.base_dir),
        "--lora",
        str(bad),
        "--out",
        str(tmp_path / "m"),
    ]
    assert "corrupt" in cli_error(capsys, argv)


def test_cli_refuses_to_overwrite_the_base(
    trained: TrainedAdapter, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(trained.base_dir)
    err = cli_error(
        capsys, ["lora", "merge", "--checkpoint", base, "--lora", str(trained.adapter_dir), "--out", base]
    )
    assert "base checkpoint itself" in err
