from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dualforce_core.data.config import DataConfig
from dualforce_core.errors import UserError
from dualforce_core.features.liveportrait import load_motion_extractor
from dualforce_core.inference.frontend import load_portrait, reference_struct
from dualforce_core.models import StructTokenProjector
from dualforce_core.preprocessing import StructNormalisation


def banded(path: Path) -> Path:
    """A 40x80 image: red left quarter, green middle half, blue right quarter (RGB)."""
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[:, :20, 0], rgb[:, 20:60, 1], rgb[:, 60:, 2] = 255, 255, 255
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_center_crop_keeps_the_middle_square(tmp_path: Path) -> None:
    out = load_portrait(banded(tmp_path / "bands.png"), 32, DataConfig(crop_mode="center"))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out[..., 1].min() > 200 and out[..., 0].max() < 50 and out[..., 2].max() < 50


def test_no_crop_letterboxes_the_whole_image(tmp_path: Path) -> None:
    out = load_portrait(banded(tmp_path / "bands.png"), 32, DataConfig(crop_mode="none"))
    assert out.shape == (32, 32, 3)
    assert out[0].max() == 0 and out[16, 1, 0] > 200 and out[16, -2, 2] > 200  # bars, then all three bands


def test_unsupported_image_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="must be one of"):
        load_portrait(tmp_path / "face.gif", 32, DataConfig())


def test_reference_structure_is_normalised_motion_or_the_dataset_mean(stand_in_weights: Path) -> None:
    projector = StructTokenProjector()
    portrait = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    mean_face = reference_struct(projector, portrait, None, None)
    assert mean_face.shape == (1, 1, 21, projector.token_dim) and not mean_face.any()
    extractor = load_motion_extractor(stand_in_weights / "liveportrait" / "motion_extractor.pth")
    raw = projector.unpack(reference_struct(projector, portrait, extractor, None))[0, 0]
    stats = StructNormalisation(
        dataset="d", extractor_ids=[], mean=raw.double().tolist(), std=[2.0] * 70, table_version=None
    )
    normalised = reference_struct(projector, portrait, extractor, stats)
    # (x - x) / 2 through float64 then float32: exact up to the fp32 rounding of the extractor's output
    torch.testing.assert_close(normalised, torch.zeros_like(normalised), atol=1e-5, rtol=1.3e-6)
    assert raw.abs().max() > 0
