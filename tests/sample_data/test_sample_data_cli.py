"""`dualforce sample-data` explains itself, writes a dataset, and turns bad arguments into clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from dualforce_core.cli.main import main
from dualforce_core.errors import UserError
from dualforce_core.sample_data import generate_dataset


def test_help_describes_the_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sample-data", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--audio-rate" in text and "--identities" in text and "metadata.json" in text


def test_cli_writes_videos_sidecars_and_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synthetic"
    argv = [
        "sample-data",
        "--out",
        str(out),
        "--clips",
        "3",
        "--seed",
        "5",
        "--seconds",
        "0.4",
        "--size",
        "64",
    ]
    assert main([*argv, "--audio-rate", "48000", "--identities", "2"]) == 0
    assert "wrote 3 clips" in capsys.readouterr().out
    metadata = json.loads((out / "metadata.json").read_text())
    assert len(metadata) == 3
    for entry in metadata:
        mp4 = out / entry["video_path"]
        with av.open(str(mp4)) as container:
            assert container.streams.audio[0].rate == 48000
            assert sum(1 for _ in container.decode(video=0)) == 10
        assert json.loads(mp4.with_suffix(".json").read_text())["num_frames"] == 10
    assert [json.loads(p.read_text())["identity"] for p in sorted((out / "videos").glob("*.json"))] == [
        0,
        1,
        0,
    ]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--size", "65", "even number"), ("--clips", "0", "at least 1"), ("--seconds", "0", "between")],
)
def test_bad_arguments_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert main(["sample-data", "--out", str(tmp_path), flag, value]) == 2
    assert message in capsys.readouterr().err


def test_unsupported_audio_rate_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="44100"):
        generate_dataset(tmp_path, clips=1, audio_rate=44100)
    file_path = tmp_path / "a_file"
    file_path.write_text("")
    with pytest.raises(UserError, match="not a folder"):
        generate_dataset(file_path, clips=1)
