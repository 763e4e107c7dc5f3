"""The inference portrait of a crop_mode=track checkpoint is the training clips' crop: `align_crop` with the
AlignConfig recorded in the checkpoint, on real photographs (Debian's opencv-doc) and dlib's real networks."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from dualforce_core.cli import generate_cmd
from dualforce_core.cli.main import main
from dualforce_core.config import load_config
from dualforce_core.curation import AlignConfig, FaceModels, align_crop, corpus, transform_points
from dualforce_core.curation.align import face_points
from dualforce_core.data.crop import center_box
from dualforce_core.data.media import to_square
from dualforce_core.errors import UserError
from dualforce_core.inference import frontend
from dualforce_core.inference.frontend import load_portrait, portrait_settings
from dualforce_core.models import DualForceModel
from dualforce_core.preprocessing import PREPROCESSING_FILE, Preprocessing
from dualforce_core.serve.codec import decode_portrait
from dualforce_core.training import preprocessing_record
from tests.inference.test_generate_cli import speech
from tests.records import write_identity_record

SIZE = 256
RECORDED = AlignConfig(scale=2.0, vy_ratio=-0.1)
"""Not the default: the portrait must follow the checkpoint's record, not this machine's config."""


@pytest.fixture(scope="module")
def models() -> FaceModels:
    return FaceModels("hog", upsample=1)


def photo_path(name: str) -> Path:
    try:
        corpus.check_media()
    except UserError as err:
        pytest.fail(f"{err} (make system-deps installs the real test media)")
    return corpus.OPENCV_DOC / corpus.PHOTOS[name][0]


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def expected_crop(models: FaceModels, rgb: np.ndarray, size: int, align: AlignConfig) -> np.ndarray:
    """What ingestion's `align_crop` makes of this image: dlib's largest face, its 68 landmarks."""
    best = max(models.detect(rgb), key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    return align_crop(rgb, models.landmarks(rgb, best.box), size, align)[0]


def track_record(checkpoint: Path, size: int, align: AlignConfig | None = RECORDED) -> Path:
    """The identity record of `tests.records`, made a crop_mode=track one (with `align` recorded)."""
    write_identity_record(checkpoint, size)
    data = json.loads((checkpoint / PREPROCESSING_FILE).read_text())
    data["crop_mode"] = "track"
    if align is not None:
        data["align"] = align.model_dump(mode="json")
    (checkpoint / PREPROCESSING_FILE).write_text(json.dumps(data))
    return checkpoint


@pytest.mark.parametrize("name", ["A", "B"])
def test_track_checkpoint_portrait_is_align_crop_bit_for_bit(
    tmp_path: Path, models: FaceModels, name: str
) -> None:
    path = photo_path(name)
    record = Preprocessing.load(track_record(tmp_path, SIZE))
    assert record.align == RECORDED
    size, data = portrait_settings(load_config(None, []), record)
    assert (size, data.crop_mode, data.curation.align) == (SIZE, "track", RECORDED)
    portrait = load_portrait(path, size, data)
    np.testing.assert_array_equal(portrait, expected_crop(models, read_rgb(path), SIZE, RECORDED))


def test_aligned_portrait_puts_the_face_where_the_recipe_says(tmp_path: Path, models: FaceModels) -> None:
    """dlib re-finds the face in the crop: eye centres and mouth centre within 2 px of where `align_crop`
    maps the source landmarks, and the landmark box centred at (0.5 - vx, 0.5 - vy) of the crop."""
    for name in ("A", "B", "C"):
        rgb = corpus.load_image(name) if name == "C" else read_rgb(photo_path(name))
        best = max(models.detect(rgb), key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        source = models.landmarks(rgb, best.box)
        crop, affine = align_crop(rgb, source, SIZE, RECORDED)
        mapped = transform_points(source, affine)
        low, high = mapped.min(axis=0), mapped.max(axis=0)
        np.testing.assert_allclose((low + high) / 2, [SIZE / 2, SIZE * (0.5 - RECORDED.vy_ratio)], atol=1e-6)
        found = models.detect(crop)
        assert found, name
        again = models.landmarks(crop, max(found, key=lambda d: d.score).box)
        for want, got in zip(face_points(mapped), face_points(again)):
            assert np.linalg.norm(want - got) < 2.0, (name, want, got)  # measured: at most 1.05 px


def test_old_record_keeps_the_old_path(tmp_path: Path, models: FaceModels) -> None:
    """A record without `align` (every checkpoint before crop_mode=track) crops exactly as before, and a
    record of another crop mode is written without the new key, as older DualForce wrote it."""
    path = photo_path("B")
    write_identity_record(tmp_path, 64)  # crop_mode=center, as every checkpoint so far
    assert "align" not in json.loads((tmp_path / PREPROCESSING_FILE).read_text())
    record = Preprocessing.load(tmp_path)
    assert record.align is None
    config = load_config(None, ["data.crop_mode=track"])  # this machine's config must not leak in
    size, data = portrait_settings(config, record)
    assert data.crop_mode == "center"
    rgb = read_rgb(path)
    old = to_square(rgb, center_box(rgb.shape[1], rgb.shape[0]), 64)
    np.testing.assert_array_equal(load_portrait(path, size, data), old)


def test_track_record_without_align_uses_the_configured_framing(tmp_path: Path, models: FaceModels) -> None:
    path = photo_path("A")
    record = Preprocessing.load(track_record(tmp_path, 128, align=None))
    config = load_config(None, ["data.curation.align.scale=2.5"])
    size, data = portrait_settings(config, record)
    assert data.curation.align.scale == 2.5
    expected = expected_crop(models, read_rgb(path), 128, AlignConfig(scale=2.5))
    np.testing.assert_array_equal(load_portrait(path, size, data), expected)


def test_no_face_is_one_user_error_naming_the_file(tmp_path: Path) -> None:
    photo_path("A")  # skips without opencv-doc
    scene = corpus.OPENCV_DOC / corpus.SCENES["building"]
    size, data = portrait_settings(load_config(None, []), Preprocessing.load(track_record(tmp_path, 64)))
    with pytest.raises(UserError, match=r"no face found in the portrait .*building\.jpg.*crop_mode=track"):
        load_portrait(scene, size, data)


def test_serve_crops_an_uploaded_portrait_the_same_way(tmp_path: Path, models: FaceModels) -> None:
    path = photo_path("B")
    size, data = portrait_settings(load_config(None, []), Preprocessing.load(track_record(tmp_path, SIZE)))
    image = base64.b64encode(path.read_bytes()).decode()
    np.testing.assert_array_equal(
        decode_portrait(image, size, data), expected_crop(models, read_rgb(path), SIZE, RECORDED)
    )


def test_training_records_the_align_config_of_track_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        preprocessing_record, "load_struct_stats", lambda name: SimpleNamespace(table_version=3)
    )
    monkeypatch.setattr(preprocessing_record, "_latent_normalisation", lambda config, dataset: None)
    dataset = SimpleNamespace(
        dataset="d",
        items=[SimpleNamespace(latent_shape=(16, 13, 8, 8))],
        extractor_ids=lambda table: [],
        struct_mean=[0.0] * 70,
        struct_std=[1.0] * 70,
    )
    track = load_config(None, ["data.crop_mode=track", "data.curation.align.scale=2.1"])
    record = preprocessing_record.build_preprocessing(track, dataset)  # type: ignore[arg-type]
    assert record.crop_mode == "track" and record.align == AlignConfig(scale=2.1)
    center = preprocessing_record.build_preprocessing(load_config(None, []), dataset)  # type: ignore[arg-type]
    assert center.align is None


def test_generate_crops_the_portrait_with_the_checkpoints_align_config(
    tmp_path: Path, stand_in_weights: Path, models: FaceModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dualforce generate --checkpoint` of a track checkpoint: the portrait it animates is `align_crop`'s."""
    path = photo_path("A")
    seen: list[np.ndarray] = []

    def spy(image: Path, size: int, data: object) -> np.ndarray:
        portrait = frontend.load_portrait(image, size, data)  # type: ignore[arg-type]
        seen.append(portrait)
        return portrait

    monkeypatch.setattr(generate_cmd, "load_portrait", spy)
    checkpoint = track_record(DualForceModel.from_preset("tiny").save_pretrained(tmp_path / "ckpt"), 32)
    args = ["generate", "--checkpoint", str(checkpoint), "--image", str(path), "--no-progress"]
    args += ["--audio", str(speech(tmp_path / "speech.wav", 0.4)), "--out", str(tmp_path / "out.mp4")]
    assert main([*args, f"weights.root={stand_in_weights}", "inference.steps=1"]) == 0
    (portrait,) = seen
    np.testing.assert_array_equal(portrait, expected_crop(models, read_rgb(path), 32, RECORDED))
    assert (tmp_path / "out.mp4").is_file()
