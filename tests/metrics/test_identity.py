from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from dualforce_core.errors import UserError
from dualforce_core.metrics import (
    acd,
    csim,
    csim_from_embeddings,
    face_crops,
    identity_embeddings,
    load_arcface,
)
from dualforce_core.metrics.identity import write_stand_in


@pytest.fixture(scope="module")
def arcface(tmp_path_factory: pytest.TempPathFactory) -> ort.InferenceSession:
    path = tmp_path_factory.mktemp("arcface") / "arcface.onnx"
    write_stand_in(path, seed=0)
    return load_arcface(path)


def faces(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def test_csim_of_a_video_against_its_own_frames_is_one(arcface: ort.InferenceSession) -> None:
    video = faces(4, seed=0)
    for frame in video:
        assert csim(arcface, frame[None], frame) == pytest.approx(1.0, abs=1e-12)
    still = np.repeat(video[:1], 5, axis=0)
    assert csim(arcface, still, video[0]) == pytest.approx(1.0, abs=1e-12)
    assert csim(arcface, video[1:], video[0]) < 0.999


def test_csim_is_the_mean_cosine_to_the_reference() -> None:
    reference = np.array([1.0, 0.0])
    generated = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])  # cosines 1, 0, 1/√2
    assert csim_from_embeddings(generated, reference) == pytest.approx((1 + 0 + 2**-0.5) / 3)


def test_acd_is_the_mean_distance_of_normalised_embeddings_frame_by_frame() -> None:
    angles = np.array([0.0, np.pi / 3, np.pi / 2, np.pi])
    a = np.stack([np.ones(4), np.zeros(4)], axis=1) * 7.0  # scale must not matter
    b = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[1.0], [2.0], [0.5], [9.0]])
    expected = np.mean(2 * np.sin(angles / 2))  # chord length between unit vectors: 0, 1, √2, 2
    assert acd(a, b) == pytest.approx(expected)
    assert acd(b, b) == 0.0
    assert acd(a[:1], b[2:3]) == pytest.approx(np.sqrt(2))


def test_acd_of_real_embeddings_is_zero_for_the_same_frames_and_positive_otherwise(
    arcface: ort.InferenceSession,
) -> None:
    a, b = identity_embeddings(arcface, faces(3, seed=1)), identity_embeddings(arcface, faces(3, seed=2))
    assert acd(a, a) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < acd(a, b) <= 2.0


def test_mismatched_or_degenerate_embeddings_are_user_errors() -> None:
    with pytest.raises(UserError, match="corresponding frames"):
        acd(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(UserError, match="zero"):
        acd(np.zeros((1, 4)), np.ones((1, 4)))
    with pytest.raises(UserError, match="sizes differ"):
        csim_from_embeddings(np.ones((2, 4)), np.ones(3))


def test_face_crops_follow_the_box_and_stay_inside_the_frame() -> None:
    video = np.zeros((2, 100, 160, 3), np.uint8)
    video[:, 20:60, 100:140] = 200  # the "face"
    crops = face_crops(video, 112, box=(100, 20, 140, 60))
    assert crops.shape == (2, 112, 112, 3)
    assert crops.min() == 200
    edge = face_crops(video, 32, box=(150, 90, 170, 110))  # box runs off the bottom-right corner
    assert edge.shape == (2, 32, 32, 3)
    centre = face_crops(video, 50)  # no box: the central 100×100 square
    assert centre.shape == (2, 50, 50, 3)
    with pytest.raises(UserError, match="empty"):
        face_crops(video, 32, box=(10, 10, 10, 20))


def test_stand_in_is_a_valid_onnx_file_with_the_arcface_contract(tmp_path: Path) -> None:
    path = tmp_path / "arcface.onnx"
    write_stand_in(path, seed=3)
    session = load_arcface(path)
    (tensor,) = session.get_inputs()
    assert tensor.shape[1:] == [3, 112, 112]
    assert identity_embeddings(session, faces(1, seed=4)).shape == (1, 512)
