"""`dualforce train` argument handling: help, flags mapped onto the config, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core.cli.main import main
from dualforce_core.config import config_dir

TINY = str(config_dir() / "train" / "tiny.yaml")


def test_help_names_the_launchers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--resume" in out and "torchrun" in out and "accelerate" in out


def test_missing_tables_exit_2_with_the_command_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "--config", TINY, "--dataset", "nope", "--run-dir", str(tmp_path), "train.mlflow=false"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "video_latents" in err and "dualforce extract latents --dataset nope" in err
    assert "Traceback" not in err


def test_unknown_config_key_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--config", TINY, "--dataset", "ds", "train.learning_rate=1"])
    assert code == 2 and "unknown config key 'train.learning_rate'" in capsys.readouterr().err
