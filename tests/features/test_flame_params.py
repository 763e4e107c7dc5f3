from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows, table_version
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.flame import INPUT_SIZE, extract_flame_params, load_regressor, sidecar_params
from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.weights import WeightsRegistry
from tests.features.feature_fixtures import MakeClips, write_sidecar


def _with(config: DualForceConfig, **data: object) -> DualForceConfig:
    return config.model_copy(update={"data": config.data.model_copy(update=data)})


def _params(clip_id: str) -> np.ndarray:
    row = read_rows("flame_params", where=f"clip_id = '{clip_id}'").to_pylist()[0]
    return decode_tensor(row["params"], row["shape"], "float32").numpy()


def test_sidecar_rows_are_the_clip_slice_of_the_source_lists(
    config: DualForceConfig, make_clips: MakeClips, tmp_path: Path
) -> None:
    sidecar = tmp_path / "src.json"
    flame = write_sidecar(sidecar, 30)
    ids = make_clips("syn", 2, num_frames=5, sidecar=sidecar)  # start frames 0 and 5
    report = extract_flame_params("syn", config, progress=False)
    assert report is not None and report.written == 2 and report.extractor_id == "flame:sidecar"
    assert np.array_equal(_params(ids[0]), flame[0:5])
    assert np.array_equal(_params(ids[1]), flame[5:10])


def test_sidecar_at_another_frame_rate_maps_the_25_fps_timeline(tmp_path: Path) -> None:
    sidecar = tmp_path / "src50.json"
    flame = write_sidecar(sidecar, 40, fps=50)
    assert np.array_equal(sidecar_params(sidecar, 5, 3), flame[[10, 12, 14]])
    with pytest.raises(UserError, match="source frames up to 40"):
        sidecar_params(sidecar, 15, 6)


def test_clips_without_sidecar_and_extractor_none_write_nothing_and_say_so(
    config: DualForceConfig, make_clips: MakeClips, capsys: pytest.CaptureFixture[str]
) -> None:
    make_clips("real", 2)
    report = extract_flame_params("real", config, progress=False)
    assert report is not None and (report.written, report.without_source) == (0, 2)
    assert table_version("flame_params") is None
    assert "2 clips have no sidecar" in capsys.readouterr().out
    assert extract_flame_params("real", _with(config, flame_extractor="none"), progress=False) is None
    assert "flame_extractor=none" in capsys.readouterr().out


def test_onnx_stand_in_follows_the_input_contract(config: DualForceConfig, make_clips: MakeClips) -> None:
    path = WeightsRegistry(config.weights.root).path("flame_regressor")
    regress = load_regressor("onnx", path)
    out = regress(np.random.default_rng(0).random((2, 3, INPUT_SIZE, INPUT_SIZE), np.float32))
    assert out.shape == (2, FLAME_DIM) and out.dtype == np.float32
    ids = make_clips("net", 1, num_frames=5)
    report = extract_flame_params("net", _with(config, flame_extractor="onnx"), progress=False)
    assert report is not None and report.written == 1 and report.extractor_id.startswith("flame:onnx:")
    params = _params(ids[0])
    assert params.shape == (5, FLAME_DIM) and np.isfinite(params).all() and np.ptp(params) > 0


class _Mean(torch.nn.Module):
    """A TorchScript regressor: channel means spread over 53 outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)).repeat(1, 18)[:, :53]


def test_torchscript_regressor_from_weights_paths(
    config: DualForceConfig, make_clips: MakeClips, tmp_path: Path
) -> None:
    path = tmp_path / "flame.pt"
    torch.jit.script(_Mean()).save(str(path))
    weights = config.weights.model_copy(update={"paths": {"flame_regressor": str(path)}})
    ts_config = _with(config, flame_extractor="torchscript").model_copy(update={"weights": weights})
    ids = make_clips("ts", 1, num_frames=5)
    report = extract_flame_params("ts", ts_config, progress=False)
    assert report is not None and report.written == 1
    params = _params(ids[0])
    assert params.shape == (5, FLAME_DIM)
    assert np.all((params >= 0) & (params <= 1)) and np.array_equal(params[:, 0], params[:, 3])
