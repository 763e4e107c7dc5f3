"""dlib's pretrained face networks, read from the local `face_recognition_models` files (no downloads).

- detection: the HOG + linear SVM frontal detector (built into dlib, CPU-fast) or the MMOD CNN
  (`mmod_human_face_detector.dat`, much slower on CPU, better on profiles and small faces);
- landmarks: the 68-point iBUG shape predictor (`shape_predictor_68_face_landmarks.dat`);
- identity: the 128-d ResNet face descriptor (`dlib_face_recognition_resnet_model_v1.dat`); two faces are
  the same person when the Euclidean distance of their descriptors is below 0.6 (dlib's rule, 99.38% on LFW).

The `face_recognition_models` package cannot be imported (its `__init__` needs pkg_resources), so its folder
is found with `importlib.util.find_spec` and the files are read by path.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualforce_core.errors import UserError

MODEL_FILES = {
    "cnn": "mmod_human_face_detector.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in source pixels."""


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


def models_dir() -> Path:
    """The folder of the installed `face_recognition_models` files."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("face_recognition_models is not installed (pip install face-recognition-models)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not folder.is_dir():
        raise UserError(f"face_recognition_models has no models folder at {folder}")
    return folder


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise UserError("dlib is not installed (pip install dlib-bin)") from None
    return dlib


class FaceModels:
    """Detector, 68-point landmarks and 128-d identity embedding, loaded once and reused per video.

    Every method takes a uint8 RGB frame [H, W, 3]. All of it is deterministic on CPU.
    """

    def __init__(self, detector: str = "hog", upsample: int = 1, folder: Path | None = None) -> None:
        dlib = _dlib()
        self.dlib = dlib
        self.folder = Path(folder) if folder is not None else models_dir()
        self.kind = detector
        self.upsample = upsample
        for name in ("landmarks68", "recognition") + (("cnn",) if detector == "cnn" else ()):
            if not (self.folder / MODEL_FILES[name]).is_file():
                raise UserError(f"face model {MODEL_FILES[name]} is missing from {self.folder}")
        if detector == "hog":
            self._hog = dlib.get_frontal_face_detector()
        elif detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(str(self.folder / MODEL_FILES["cnn"]))
        else:
            raise UserError(f"face detector must be hog or cnn, got {detector!r}")
        self._shape = dlib.shape_predictor(str(self.folder / MODEL_FILES["landmarks68"]))
        self._recognition = dlib.face_recognition_model_v1(str(self.folder / MODEL_FILES["recognition"]))

    def detect(self, rgb: np.ndarray, min_score: float = 0.0) -> list[Detection]:
        """Faces found, best first (ties broken by position, so the order is deterministic)."""
        image = np.ascontiguousarray(rgb)
        found: list[Detection] = []
        if self.kind == "hog":
            rects, scores, _ = self._hog.run(image, self.upsample, min_score)
            for rect, score in zip(rects, scores):
                found.append(Detection(_box(rect), float(score)))
        else:
            for item in self._cnn(image, self.upsample):
                if item.confidence >= min_score:
                    found.append(Detection(_box(item.rect), float(item.confidence)))
        return sorted(found, key=lambda d: (-d.score, d.box))

    def landmarks(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """68 iBUG landmarks [68, 2] (float64, source pixels) fitted inside `box`."""
        shape = self._shape(np.ascontiguousarray(rgb), self._rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def face_chip(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150×150 aligned chip the descriptor network reads (dlib's own alignment, padding 0.25)."""
        dlib = self.dlib
        points = np.rint(np.asarray(landmarks)).astype(int)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in points])
        return np.asarray(dlib.get_face_chip(np.ascontiguousarray(rgb), shape, size=150, padding=0.25))

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d identity descriptor (float64) of a `face_chip`."""
        return np.array(self._recognition.compute_face_descriptor(np.ascontiguousarray(chip)), np.float64)

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 128-d identity descriptor (float64) of the face with these 68 landmarks."""
        return self.embed_chip(self.face_chip(rgb, landmarks))

    def _rect(self, box: Box) -> Any:
        x0, y0, x1, y1 = (round(v) for v in box)
        return self.dlib.rectangle(int(x0), int(y0), int(x1) - 1, int(y1) - 1)


def _box(rect: Any) -> Box:
    return (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))


def landmarks_box(landmarks: np.ndarray) -> Box:
    points = np.asarray(landmarks)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
