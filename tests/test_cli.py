from __future__ import annotations

import subprocess
import sys

import pytest

from dualforce_core.cli.main import build_parser, main


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser._subparsers is not None
    commands = dict(parser._subparsers._group_actions[0].choices or {})
    assert {"sample-data", "weights", "config", "demo"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: dualforce" in capsys.readouterr().out


def test_config_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "train.lrr=3"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown config key 'train.lrr'" in err
    assert "Traceback" not in err


def test_config_prints_resolved_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "model.preset=tiny", "train.lr=0.125"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.125" in out
    assert "preset: tiny" in out


def test_console_script_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dualforce_core.cli.main", "config", "model.preset=tiny"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "video_dim: 64" in result.stdout
