from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dualforce_core.features.liveportrait import (
    MotionExtractor,
    bins_to_degrees,
    load_motion_extractor,
    motion_vector,
)
from dualforce_core.motion_layout import MOTION_DIM
from dualforce_core.weights import WeightsRegistry

KEYS = Path(__file__).parent / "data" / "liveportrait_motion_extractor_keys.json"


def _official_keys() -> dict[str, list[int]]:
    return json.loads(KEYS.read_text())["keys"]


def test_official_key_list_loads_strictly(tmp_path: Path) -> None:
    keys = _official_keys()
    torch.manual_seed(0)
    state = {name: torch.randn(shape) for name, shape in keys.items()}
    path = tmp_path / "motion_extractor.pth"
    torch.save(state, path)
    model = load_motion_extractor(path)
    assert list(model.state_dict()) == list(keys)
    assert (
        sum(v.numel() for v in model.state_dict().values()) == json.loads(KEYS.read_text())["num_parameters"]
    )
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_a_key_list_that_differs_is_refused(tmp_path: Path) -> None:
    state = {name: torch.zeros(shape) for name, shape in _official_keys().items()}
    state["detector.fc_exp.weight"] = torch.zeros(24 * 3, 768)  # LivePortrait's num_kp default is 24, not 21
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"fc_exp\.weight"):
        load_motion_extractor(path)


def test_angle_is_the_softmax_expectation_of_3_degree_bins() -> None:
    peaked = torch.full((3, 66), -1e4)
    for row, k in enumerate((0, 32, 65)):
        peaked[row, k] = 0.0
    assert torch.allclose(bins_to_degrees(peaked), torch.tensor([-97.5, -1.5, 97.5]))
    assert torch.allclose(bins_to_degrees(torch.zeros(1, 66)), torch.tensor([0.0]), atol=1e-4)  # uniform → 0°
    logits = torch.randn(4, 66)
    expected = (torch.softmax(logits, 1) * torch.arange(66.0)).sum(1) * 3 - 97.5
    assert torch.allclose(bins_to_degrees(logits), expected)


def test_motion_vector_order_is_exp_angles_translation_scale() -> None:
    exp = torch.arange(63.0)[None]
    peak = torch.full((1, 66), -1e4)
    raw = {
        "exp": exp,
        "pitch": peak.clone().index_fill_(1, torch.tensor([10]), 0.0),
        "yaw": peak.clone().index_fill_(1, torch.tensor([40]), 0.0),
        "roll": peak.clone().index_fill_(1, torch.tensor([33]), 0.0),
        "t": torch.tensor([[0.1, 0.2, 0.3]]),
        "scale": torch.tensor([[1.5]]),
        "kp": torch.zeros(1, 63),
    }
    vector = motion_vector(raw)
    assert vector.shape == (1, MOTION_DIM) == (1, 70)
    assert torch.equal(vector[0, :63], exp[0])
    assert torch.allclose(vector[0, 63:66], torch.tensor([-67.5, 22.5, 1.5]))
    assert torch.allclose(vector[0, 66:], torch.tensor([0.1, 0.2, 0.3, 1.5]))


def test_stand_in_is_the_full_architecture_in_the_official_format(weights_root: Path) -> None:
    path = WeightsRegistry(weights_root).path("liveportrait_motion")
    state = torch.load(path, weights_only=True)
    assert {k: list(v.shape) for k, v in state.items()} == _official_keys()
    model = load_motion_extractor(path)
    assert isinstance(model, MotionExtractor) and not model.training
    with torch.no_grad():
        out = model(torch.rand(2, 3, 256, 256))
    assert out["kp"].shape == (2, 63) and out["pitch"].shape == (2, 66) and out["scale"].shape == (2, 1)
