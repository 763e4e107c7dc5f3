"""`dualforce ingest` end to end: summary with versions, help for newcomers, clean errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core.cli.main import main
from dualforce_core.data import lance_store
from tests.data.ingest_fixtures import random_bytes, write_video

ARGS = ["data.size=32", "data.clip_frames=9", "data.clip_stride=8"]


def test_ingest_prints_counts_reasons_and_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_video(tmp_path / "raw" / "talk.mp4", 30)
    random_bytes(tmp_path / "raw" / "broken.mp4")
    assert main(["ingest", "--dataset", "demo", "--src", str(tmp_path / "raw"), *ARGS]) == 0
    captured = capsys.readouterr()
    assert "1 ingested" in captured.out and "1 rejected" in captured.out
    assert "corrupt=1" in captured.out and "clips v1" in captured.out and "rejects v1" in captured.out
    assert "[2/2] talk.mp4: ingested, 3 clips" in captured.err
    assert lance_store.read_rows("clips", ["dataset"]).column("dataset").to_pylist() == ["demo"] * 3


def test_help_explains_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    assert "--dataset" in out and "--src" in out and "data.crop_mode" in out and "rejects" in out
    assert "| track (face-track curation" in out and "SyncNet filter" in out  # crop modes, sync filter
    assert "weights.paths.syncnet" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--src", "/no/such/folder"], "does not exist"),
        (["data.crop_mode=detector"], "detector_path"),
        (["data.clip_frames=10"], "1 (mod 4)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "--dataset", "demo", "--src", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
