from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core.cli.main import main
from tests.features.feature_fixtures import MakeClips


def test_extract_audio_from_the_command_line_then_resume(
    weights_root: Path, make_clips: MakeClips, capsys: pytest.CaptureFixture[str]
) -> None:
    make_clips("cli", 2)
    args = ["extract", "audio", "--dataset", "cli", "--no-progress", f"weights.root={weights_root}"]
    assert main(args) == 0
    assert "audio_features[cli]: 2 written, 0 already done" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 written, 2 already done" in capsys.readouterr().out


def test_missing_weights_and_unknown_dataset_are_clear_errors(
    tmp_path: Path, weights_root: Path, make_clips: MakeClips, capsys: pytest.CaptureFixture[str]
) -> None:
    make_clips("cli", 1)
    assert main(["extract", "latents", "--dataset", "cli", f"weights.root={tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err
    assert "weights for 'wan_vae' not found" in err and "Traceback" not in err
    assert main(["extract", "struct", "--dataset", "nope", f"weights.root={weights_root}"]) == 2
    assert "no clips of dataset 'nope'" in capsys.readouterr().err


def test_flame_none_prints_a_line_and_succeeds(
    weights_root: Path, make_clips: MakeClips, capsys: pytest.CaptureFixture[str]
) -> None:
    make_clips("cli", 1)
    args = [
        "extract",
        "flame",
        "--dataset",
        "cli",
        "data.flame_extractor=none",
        f"weights.root={weights_root}",
    ]
    assert main(args) == 0
    assert "no FLAME rows written" in capsys.readouterr().out


def test_weights_init_random_writes_the_four_feature_stand_ins(tmp_path: Path) -> None:
    assert main(["weights", "init-random", "--out", str(tmp_path / "w")]) == 0
    marker = (tmp_path / "w" / "STAND-INS.txt").read_text()
    for name in ("wan_vae", "hubert", "liveportrait_motion", "flame_regressor"):
        assert f" {name}\n" in marker
