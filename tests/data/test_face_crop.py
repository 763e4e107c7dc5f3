"""Face-centred crops: a detector file through OpenCV's real loading path, and no face → `no_face`.

`haar` runs OpenCV's bundled frontal-face cascade on a drawn face; the `detector` mode runs `cv2.FaceDetectorYN` on a stand-in ONNX with YuNet's interface that scores bright
regions (a real YuNet file is used the same way).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dualforce_core.data import lance_store
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.errors import UserError
from tests.data.ingest_fixtures import write_bright_region_yunet, write_video

SQUARE = (56, 24, 104, 72)


def _config(tmp_path: Path) -> DataConfig:
    detector = write_bright_region_yunet(tmp_path / "yunet_standin.onnx")
    return DataConfig(
        size=32,
        clip_frames=9,
        clip_stride=8,
        crop_mode="detector",
        detector_path=str(detector),
        face_samples=3,
    )


def test_detector_crop_centres_on_the_face_and_rejects_faceless_video(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    write_video(src / "face.mp4", 20, width=160, height=96, bright_box=SQUARE)
    write_video(src / "dark.mp4", 20, width=160, height=96, bright_box=(0, 0, 0, 0))
    report = ingest_dataset("faces", src, _config(tmp_path), progress=False)
    assert dict(report.rejects) == {"no_face": 1}
    boxes = lance_store.read_rows("clips", ["face_box"]).column("face_box").to_pylist()
    assert len(boxes) == 2
    x0, y0, x1, y1 = boxes[0]
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert 0 <= x0 < (SQUARE[0] + SQUARE[2]) / 2 < x1 <= 160
    assert 0 <= y0 < (SQUARE[1] + SQUARE[3]) / 2 < y1 <= 96
    stage = lance_store.read_rows("rejects", ["stage"], "reason = 'no_face'").column("stage").to_pylist()
    assert stage == ["crop"]


def test_haar_crop_finds_a_drawn_face_and_rejects_faceless_video(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    write_video(src / "face.mp4", 20, width=320, height=240, face_at=(200, 120))
    write_video(src / "dark.mp4", 20, width=320, height=240, bright_box=(0, 0, 0, 0))
    config = DataConfig(size=32, clip_frames=9, clip_stride=8, crop_mode="haar", face_samples=3)
    report = ingest_dataset("haar", src, config, progress=False)
    assert dict(report.rejects) == {"no_face": 1}
    boxes = lance_store.read_rows("clips", ["face_box"]).column("face_box").to_pylist()
    assert len(boxes) == 2
    x0, y0, x1, y1 = boxes[0]
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 < 200 < x1 and y0 < 120 < y1
    assert x0 > 40  # centred on the face, not on the frame


def test_unusable_detector_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(UserError, match="YuNet"):
        ingest_dataset(
            "x", tmp_path, DataConfig(crop_mode="detector", detector_path=str(tmp_path / "model.onnx"))
        )
