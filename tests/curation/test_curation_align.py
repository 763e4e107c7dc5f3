"""`align_crop`: LivePortrait's framing, checked as properties on real landmarks (dlib's fit to a real photo)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dualforce_core.curation import (
    AlignConfig,
    FaceModels,
    align_crop,
    align_portrait,
    crop_affine,
    crop_rect,
    invert_affine,
    rescale_affine,
    transform_points,
)
from dualforce_core.curation import corpus as corpus_module
from dualforce_core.curation.align import face_points
from dualforce_core.errors import UserError

SIZE = 256


@pytest.fixture(scope="module")
def photo(models: FaceModels) -> tuple[np.ndarray, np.ndarray]:
    corpus_module.check_media()
    image = corpus_module.load_image("B")
    return image, corpus_module.photo_landmarks(models, image)


def similarity(angle_deg: float, scale: float, shift: tuple[float, float], centre: np.ndarray) -> np.ndarray:
    return cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle_deg, scale) + np.array(
        [[0, 0, shift[0]], [0, 0, shift[1]]]
    )


def test_scale_and_offset_follow_the_livportrait_recipe(photo: tuple[np.ndarray, np.ndarray]) -> None:
    """In the crop the landmarks span size/scale, centred at (0.5 - vx, 0.5 - vy) of the crop."""
    image, landmarks = photo
    for config in (AlignConfig(), AlignConfig(scale=1.8, vx_ratio=0.05, vy_ratio=-0.2)):
        crop, affine = align_crop(image, landmarks, SIZE, config)
        assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8
        inside = transform_points(landmarks, affine)
        low, high = inside.min(axis=0), inside.max(axis=0)
        assert max(high - low) == pytest.approx(SIZE / config.scale, abs=1e-6)
        centre = (low + high) / 2
        assert centre[0] == pytest.approx(SIZE * (0.5 - config.vx_ratio), abs=1e-6)
        assert centre[1] == pytest.approx(SIZE * (0.5 - config.vy_ratio), abs=1e-6)


def test_upstream_defaults() -> None:
    config = AlignConfig()
    assert (config.scale, config.vx_ratio, config.vy_ratio, config.rotate, config.axis) == (
        2.3,
        0.0,
        -0.125,
        True,
        "eye_mouth",
    )


@pytest.mark.parametrize("axis", ["eye_mouth", "eye_line"])
def test_rotation_levels_the_face(photo: tuple[np.ndarray, np.ndarray], axis: str) -> None:
    image, landmarks = photo
    tilted = similarity(17.0, 1.0, (0.0, 0.0), landmarks.mean(axis=0))
    points = transform_points(landmarks, tilted)
    _, affine = align_crop(image, points, SIZE, AlignConfig(axis=axis))
    left, right, mouth = (transform_points(p, affine) for p in face_points(points))
    if axis == "eye_mouth":
        assert (left + right)[0] / 2 == pytest.approx(mouth[0], abs=1e-6)
    else:
        assert left[1] == pytest.approx(right[1], abs=1e-6)
    assert mouth[1] > left[1]


def test_crop_is_invariant_to_camera_similarity(photo: tuple[np.ndarray, np.ndarray]) -> None:
    """Rotate, scale and move the photo: the aligned crop and its landmarks stay where they were."""
    image, landmarks = photo
    crop0, affine0 = align_crop(image, landmarks, SIZE)
    reference = transform_points(landmarks, affine0)
    for angle, scale, shift in ((12.0, 0.8, (15.0, -10.0)), (-25.0, 1.3, (-40.0, 20.0))):
        matrix = similarity(angle, scale, shift, landmarks.mean(axis=0))
        moved = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR)
        points = transform_points(landmarks, matrix)
        crop, affine = align_crop(moved, points, SIZE)
        np.testing.assert_allclose(transform_points(points, affine), reference, atol=1e-6)
        # Same picture up to resampling (and the parts the moved photo lost at its edges).
        valid = (crop0.max(axis=2) > 0) & (crop.max(axis=2) > 0)
        difference = np.abs(crop.astype(np.float64) - crop0.astype(np.float64))[valid].mean()
        assert difference < 12.0


def test_no_rotation_keeps_frame_axes(photo: tuple[np.ndarray, np.ndarray]) -> None:
    _, landmarks = photo
    tilted = transform_points(landmarks, similarity(20.0, 1.0, (0.0, 0.0), landmarks.mean(axis=0)))
    affine = crop_affine(tilted, SIZE, AlignConfig(rotate=False))
    assert affine[0, 1] == 0.0 and affine[1, 0] == 0.0 and affine[0, 0] == affine[1, 1]
    rect = crop_rect(tilted)
    assert affine[0, 0] == pytest.approx(SIZE / rect.side)
    assert rect.angle == pytest.approx(math.radians(-20.0), abs=math.radians(1.5))


def test_affine_helpers(photo: tuple[np.ndarray, np.ndarray]) -> None:
    _, landmarks = photo
    affine = crop_affine(landmarks, 512)
    np.testing.assert_allclose(rescale_affine(affine, 512, 224), crop_affine(landmarks, 224), atol=1e-9)
    back = transform_points(transform_points(landmarks, affine), invert_affine(affine))
    np.testing.assert_allclose(back, landmarks, atol=1e-9)


def test_large_downscale_is_antialiased(photo: tuple[np.ndarray, np.ndarray]) -> None:
    """A 64-px crop of a big face: the area pre-shrink keeps it close to an area-resized high-res crop."""
    image, landmarks = photo
    big, _ = align_crop(image, landmarks, 1024)
    reference = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64)
    small, _ = align_crop(image, landmarks, 64)
    naive = cv2.warpAffine(image, crop_affine(landmarks, 64), (64, 64), flags=cv2.INTER_LINEAR)
    ours = np.abs(small.astype(np.float64) - reference).mean()
    assert ours < np.abs(naive.astype(np.float64) - reference).mean()
    assert ours < 6.0


def test_landmark_count_is_checked() -> None:
    with pytest.raises(UserError, match="68-point"):
        crop_rect(np.zeros((5, 2)))


def test_align_portrait_on_a_real_photo(models: FaceModels) -> None:
    image = corpus_module.load_image("A")
    crop, _, inside = align_portrait(image, SIZE, models=models)
    low, high = inside.min(axis=0), inside.max(axis=0)
    assert crop.shape == (SIZE, SIZE, 3)
    assert max(high - low) == pytest.approx(SIZE / 2.3, abs=1e-6)
    eyes = (face_points(inside)[0] + face_points(inside)[1]) / 2
    assert abs(eyes[0] - face_points(inside)[2][0]) < 1e-6
    with pytest.raises(UserError, match="no face"):
        align_portrait(corpus_module.load_image("building"), SIZE, models=models)
