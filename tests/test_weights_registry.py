from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core import paths
from dualforce_core.cli.main import main
from dualforce_core.weights import COMPONENTS, MissingWeightsError, WeightsRegistry, init_random


def test_missing_file_error_names_component_path_format_and_source(tmp_path: Path) -> None:
    registry = WeightsRegistry(tmp_path / "weights")
    with pytest.raises(MissingWeightsError) as info:
        registry.path("syncnet")
    message = str(info.value)
    assert "'syncnet'" in message
    assert str(tmp_path / "weights" / "metrics" / "syncnet_v2.model") in message
    assert "weights_only=True" in message  # the format
    assert "syncnet_python" in message  # where people get it


def test_missing_file_inside_a_directory_component_is_named(tmp_path: Path) -> None:
    (tmp_path / "wan_vae").mkdir()
    (tmp_path / "wan_vae" / "config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match=r"diffusion_pytorch_model\.safetensors"):
        WeightsRegistry(tmp_path).path("wan_vae")


def test_per_component_override_wins(tmp_path: Path) -> None:
    custom = tmp_path / "elsewhere.model"
    custom.write_bytes(b"x")
    registry = WeightsRegistry(tmp_path / "weights", {"syncnet": str(custom)})
    assert registry.path("syncnet") == custom.resolve()


def test_unknown_component_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown weights component"):
        WeightsRegistry(tmp_path).path("gpt5")
    with pytest.raises(Exception, match="unknown components"):
        WeightsRegistry(tmp_path, {"gpt5": "x"})


def test_default_root_follows_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dualforce_home: Path
) -> None:
    assert WeightsRegistry().root == dualforce_home / "weights"
    monkeypatch.setenv("DUALFORCE_WEIGHTS", str(tmp_path / "w"))
    assert WeightsRegistry().root == (tmp_path / "w").resolve()


def test_init_random_marks_every_written_component_as_stand_in(tmp_path: Path) -> None:
    written = init_random(tmp_path / "w")
    registry = WeightsRegistry(tmp_path / "w")
    marker = (tmp_path / "w" / "STAND-INS.txt").read_text()
    assert "RANDOM" in marker
    for name in written:
        registry.path(name)
        assert registry.is_stand_in(name)
        assert len(registry.fingerprint(name)) == 64
    for name in set(COMPONENTS) - set(written):
        assert not registry.is_stand_in(name)


def test_cli_reports_missing_weights_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "MISSING" in out
    assert str(paths.weights_dir()) in out
