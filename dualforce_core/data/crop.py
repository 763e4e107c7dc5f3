"""Where in the source frame a clip is cut from: one fixed square box per source video.

A single box for the whole video (rather than per-frame tracking) keeps the head's own motion in the clip,
which the structure tower must learn; detection runs on a few frames spread over the video and takes the
median, so one missed or spurious detection does not move the crop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dualforce_core.data.config import DataConfig
from dualforce_core.data.media import MediaError, sample_frames
from dualforce_core.errors import UserError

Box = tuple[float, float, float, float]
FaceFinder = Callable[[np.ndarray], list[Box]]
"""RGB frame → face boxes (x0, y0, x1, y1) in its pixels."""
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


def center_box(width: int, height: int) -> Box:
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return (x0, y0, x0 + side, y0 + side)


def expand_square(face: Box, scale: float, width: int, height: int) -> Box:
    """A square `scale` times the face's larger side, same centre, shifted (not shrunk) to fit the frame."""
    x0, y0, x1, y1 = face
    side = min(max(x1 - x0, y1 - y0) * scale, width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = float(np.clip(cx - side / 2, 0, width - side))
    top = float(np.clip(cy - side / 2, 0, height - side))
    return (left, top, left + side, top + side)


def _cascade(path: str) -> FaceFinder:
    """An OpenCV Haar cascade (the bundled frontal-face one for `crop_mode=haar`)."""
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise UserError(f"cannot load an OpenCV cascade from {path}")

    def find(rgb: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        side = max(16, min(gray.shape) // 8)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
        return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]

    return find


def _yunet(path: str) -> FaceFinder:
    """OpenCV's `FaceDetectorYN` over an ONNX file with the YuNet outputs."""
    try:
        detector = cv2.FaceDetectorYN.create(path, "", (320, 320), score_threshold=0.6)
    except cv2.error as err:
        raise UserError(f"cannot load a YuNet face detector from {path}: {err}") from None

    def find(rgb: np.ndarray) -> list[Box]:
        height, width = rgb.shape[:2]
        detector.setInputSize((width, height))
        _, faces = detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in faces[:, :4]]

    return find


def load_detector(config: DataConfig) -> FaceFinder:
    """The face finder for `crop_mode`: `haar` = OpenCV's bundled frontal cascade, `detector` = a local file
    (`.onnx`: YuNet through `cv2.FaceDetectorYN`; `.xml`: an OpenCV cascade)."""
    if config.crop_mode == "haar":
        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
        return _cascade(str(Path(folder) / HAAR_CASCADE))
    if not config.detector_path:
        raise UserError("data.crop_mode=detector needs data.detector_path (a YuNet .onnx or a cascade .xml)")
    path = Path(config.detector_path).expanduser()
    if not path.is_file():
        raise UserError(f"data.detector_path {path} does not exist")
    if path.suffix.lower() == ".onnx":
        return _yunet(str(path))
    if path.suffix.lower() == ".xml":
        return _cascade(str(path))
    raise UserError(f"data.detector_path {path} must be a YuNet .onnx or an OpenCV cascade .xml")


def detect_face_box(frames: list[np.ndarray], finder: FaceFinder, scale: float) -> Box | None:
    """Median of the largest face in each frame, expanded; None unless at least half the frames show a face."""
    faces = []
    for rgb in frames:
        found = finder(rgb)
        if found:
            faces.append(max(found, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])))
    if not frames or len(faces) * 2 < len(frames):
        return None
    median = np.median(np.asarray(faces, np.float64), axis=0)
    height, width = frames[0].shape[:2]
    x0, y0, x1, y1 = (float(v) for v in median)
    return expand_square((x0, y0, x1, y1), scale, width, height)


def crop_box(
    path: Path, width: int, height: int, config: DataConfig, detector: FaceFinder | None
) -> Box | None:
    """The source-pixel box to cut, or None for `crop_mode=none` (letterbox the whole frame)."""
    if config.crop_mode == "none":
        return None
    if config.crop_mode == "center":
        return center_box(width, height)
    frames = sample_frames(path, config.face_samples)
    box = detect_face_box(frames, detector or load_detector(config), config.face_scale)
    if box is None:
        raise MediaError("no_face", f"no face found in at least half of {config.face_samples} sampled frames")
    return box
