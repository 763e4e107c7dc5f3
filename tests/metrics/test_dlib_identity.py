"""CSIM/ACD on dlib's real face-recognition network, measured on real photographs.

dlib's own same-person rule is a Euclidean distance below 0.6 between raw descriptors. The descriptors are
not unit vectors (norms 1.36–1.55 on the five photographs), so in cosine terms, for two descriptors of norm
r: d² = 2r²(1 − cos) < 0.36 ⇔ cos > 1 − 0.18 / r², which at the measured mean norm r = 1.46 is
cos > 0.916. Measured: one face under a few pixels of shift, ±6 % scale, ±4° rotation and JPEG down to
quality 50 keeps CSIM ≥ 0.999 (distance ≤ 0.07); the ten pairs of the five different people have CSIM
0.814–0.878 (distance 0.73–0.89).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dualforce_core.curation.faces import DESCRIPTOR_DIM, SAME_PERSON_DISTANCE
from dualforce_core.errors import UserError
from dualforce_core.metrics import DlibFaces, csim_from_embeddings, identity_scores
from tests.metrics.real_faces import PHOTOS, dlib_faces, face_square, jitter, photo

JITTERS: tuple[dict[str, Any], ...] = (  # (dx, dy) px, scale, rotation in degrees, JPEG quality
    {"dx": 3, "dy": -2},
    {"dx": -4, "dy": 3, "scale": 1.04},
    {"scale": 0.95, "angle": 3},
    {"dx": 2, "dy": 2, "angle": -4, "jpeg": 70},
    {"jpeg": 50},
    {"scale": 1.06, "angle": 2, "jpeg": 60},
)


def cosine_threshold(mean_norm: float) -> float:
    """dlib's distance rule d < 0.6 as a cosine, for two descriptors of norm `mean_norm`."""
    return 1.0 - SAME_PERSON_DISTANCE**2 / (2.0 * mean_norm**2)


@pytest.fixture(scope="module")
def faces() -> DlibFaces:
    return dlib_faces()


@pytest.fixture(scope="module")
def people(faces: DlibFaces) -> dict[str, np.ndarray]:
    """The raw descriptor of the largest face in each of the five photographs."""
    descriptors = {}
    for name in PHOTOS:
        image = photo(name)
        face = faces.find(image)
        assert face is not None, name
        descriptors[name] = faces.descriptor(image, face)
    return descriptors


def test_csim_of_a_real_face_with_itself_under_jitter_is_at_least_0_98(faces: DlibFaces) -> None:
    square = face_square(photo("smiling_man"))
    video = np.stack([square] + [jitter(square, **j) for j in JITTERS])
    measured = faces.video(video, descriptors=True)
    assert measured.found.all() and measured.descriptors is not None
    assert measured.descriptors.shape == (len(video), DESCRIPTOR_DIM)
    csim, acd, gt_csim = identity_scores(measured.descriptors, measured.descriptors)
    assert csim == gt_csim and acd == 0.0
    per_frame = [csim_from_embeddings(d[None], measured.descriptors[0]) for d in measured.descriptors]
    assert min(per_frame) >= 0.98  # measured ≥ 0.999; the brief asks ≥ 0.9
    distances = np.linalg.norm(measured.descriptors - measured.descriptors[0], axis=1)
    assert distances.max() < SAME_PERSON_DISTANCE / 3  # measured ≤ 0.07


def test_different_real_people_fail_dlibs_same_person_rule_and_the_cosine_derived_from_it(
    people: dict[str, np.ndarray],
) -> None:
    norms = np.array([np.linalg.norm(d) for d in people.values()])
    assert ((norms > 1.2) & (norms < 1.7)).all()  # not unit vectors: the cosine threshold depends on them
    threshold = cosine_threshold(float(norms.mean()))
    assert threshold == pytest.approx(0.916, abs=0.01)
    for a, b in itertools.combinations(people, 2):
        distance = float(np.linalg.norm(people[a] - people[b]))
        csim = csim_from_embeddings(people[a][None], people[b])
        assert distance > SAME_PERSON_DISTANCE, (a, b, distance)  # measured ≥ 0.73
        assert csim < threshold - 0.02, (a, b, csim)  # measured ≤ 0.878
        # ACD of one frame each: the chord between the normalised descriptors, √(2 − 2·cos)
        _, acd, _ = identity_scores(people[a][None], people[b][None])
        assert acd == pytest.approx(np.sqrt(2 - 2 * csim), rel=1e-9)


def test_frames_without_a_face_are_nan_rows_that_identity_scores_leave_out(faces: DlibFaces) -> None:
    square = face_square(photo("bearded_man"))
    blank = np.full_like(square, 128)  # a grey frame: nothing to find
    measured = faces.video(np.stack([square, blank, jitter(square, dx=2)]), descriptors=True)
    assert measured.found.tolist() == [True, False, True] and measured.rate == pytest.approx(2 / 3)
    assert measured.descriptors is not None and np.isnan(measured.descriptors[1]).all()
    assert np.isnan(measured.landmarks[1]).all() and np.isfinite(measured.landmarks[[0, 2]]).all()
    real = measured.descriptors
    csim, acd, gt_csim = identity_scores(real, real[[0, 0, 0]])  # a "generated" still of frame 0
    assert csim == pytest.approx(1.0, abs=1e-12)
    assert 0 < acd < 0.1  # frames 0 and 2 only: 0 and the small distance of the shifted frame
    assert gt_csim > 0.98
    no_reference = identity_scores(real[[1, 0, 2]], real)
    assert np.isnan(no_reference[0]) and np.isnan(no_reference[2])  # no face in the reference frame
    assert np.isnan(identity_scores(real[[1]], real[[1]])[1])  # nothing to compare at all


def test_missing_model_files_are_one_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dlib model files missing"):
        DlibFaces(tmp_path)
    with pytest.raises(UserError, match="uint8 RGB"):
        dlib_faces().find(np.zeros((8, 8), np.uint8))
