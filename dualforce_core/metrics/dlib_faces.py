"""dlib's face networks for the metrics: the largest face with its 68 landmarks, and its 128-d descriptor.

Real pretrained networks that run offline on the CPU, read from the files of dlib's model release (on PyPI
as `face_recognition_models`, whose folder is found by path: importing it needs `pkg_resources`):

- `shape_predictor_68_face_landmarks.dat`: the iBUG 300-W 68-point markup, 0-indexed (jaw 0–16, brows
  17–26, nose 27–35, eyes 36–47, outer lip 48–59, inner lip 60–67), an ensemble of regression trees;
- `shape_predictor_5_face_landmarks.dat`: eye corners and nose base, what the recognition chip is aligned by;
- `dlib_face_recognition_resnet_model_v1.dat`: a ResNet-29 metric network on a 150×150 aligned chip
  (padding 0.25), 128-d output. dlib's own rule: two faces are one person when the Euclidean distance of
  their descriptors is below 0.6 (99.38 % on LFW). The descriptors are not unit vectors (norms ≈ 1.3–1.5 on
  real photos), so for CSIM/ACD they are L2-normalised like any embedding.

Faces are found by dlib's HOG frontal detector (`get_frontal_face_detector`, built into dlib: no file), at
the image's own size first and on the ×2 upsampled image (`upsample 1`) only when that finds none; of
several faces the largest box is kept.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import dlib
import numpy as np

from dualforce_core.errors import UserError

MODEL_FILES = {
    "dlib_landmarks68": "shape_predictor_68_face_landmarks.dat",
    "dlib_landmarks5": "shape_predictor_5_face_landmarks.dat",
    "dlib_recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
LANDMARKS = 68
DESCRIPTOR_DIM = 128
SAME_PERSON_DISTANCE = 0.6  # dlib's threshold on the Euclidean distance of raw descriptors
CHIP_PADDING = 0.25  # compute_face_descriptor's default: the chip dlib's network was trained on
CROP_SIZE = 256
"""Side of the square face crops (`crops.face_crops`) the dlib metrics measure; LMD is in these pixels."""


def default_model_dir() -> Path:
    """`face_recognition_models/models/` of the installed package, located without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "dlib's model files were not found: install them with `pip install face-recognition-models==0.3.0` "
            "or point eval.dlib_models at a folder holding " + ", ".join(sorted(MODEL_FILES.values()))
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom (pixels, right/bottom inclusive as dlib has it)
    landmarks: np.ndarray  # [68, 2] float64 (x, y)


@dataclass(frozen=True)
class VideoFaces:
    """Per frame of a video: whether a face was found, its 68 landmarks, optionally its descriptor."""

    found: np.ndarray  # [T] bool
    landmarks: np.ndarray  # [T, 68, 2] float64, NaN where no face was found
    descriptors: np.ndarray | None  # [T, 128] float64, NaN rows where no face was found

    @property
    def rate(self) -> float:
        """Share of frames with a face."""
        return float(self.found.mean())


def _image(image: Any) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise UserError(f"dlib needs a uint8 RGB image [H, W, 3], got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def _rectangle(box: tuple[int, int, int, int]) -> Any:
    return dlib.rectangle(*box)


class DlibFaces:
    """The detector and the three model files, loaded once; `files` is what a report records of them."""

    def __init__(self, model_dir: str | Path | None = None) -> None:
        folder = Path(model_dir) if model_dir is not None else default_model_dir()
        paths = {name: folder / filename for name, filename in MODEL_FILES.items()}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise UserError(
                f"dlib model files missing: {', '.join(missing)}; they come with `pip install "
                "face-recognition-models==0.3.0` (or dlib.net/files), or set eval.dlib_models to their folder"
            )
        try:
            self._detector = dlib.get_frontal_face_detector()
            self._landmarks68 = dlib.shape_predictor(str(paths["dlib_landmarks68"]))
            self._landmarks5 = dlib.shape_predictor(str(paths["dlib_landmarks5"]))
            self._recognition = dlib.face_recognition_model_v1(str(paths["dlib_recognition"]))
        except RuntimeError as error:
            raise UserError(f"cannot load dlib's models from {folder}: {error}") from error
        self.files: dict[str, dict[str, Any]] = {}
        for name, path in paths.items():
            stat = path.stat()
            self.files[name] = {
                "path": str(path),
                "sha256": _sha256(str(path), stat.st_size, stat.st_mtime_ns),
                "stand_in": False,
            }

    def _largest_box(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        for upsample in (0, 1):
            boxes = self._detector(image, upsample)
            if len(boxes):
                best = max(boxes, key=lambda r: r.width() * r.height())
                return int(best.left()), int(best.top()), int(best.right()), int(best.bottom())
        return None

    def find(self, image: Any) -> Face | None:
        """The largest face in a uint8 RGB image with its 68 landmarks, or None when there is no face."""
        picture = _image(image)
        box = self._largest_box(picture)
        if box is None:
            return None
        shape = self._landmarks68(picture, _rectangle(box))
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        return Face(box, points)

    def descriptor(self, image: Any, face: Face) -> np.ndarray:
        """The raw 128-d descriptor (float64) of `face` in `image`, on dlib's 5-point aligned 150×150 chip."""
        picture = _image(image)
        shape = self._landmarks5(picture, _rectangle(face.box))
        vector = self._recognition.compute_face_descriptor(
            picture, shape, num_jitters=0, padding=CHIP_PADDING
        )
        return np.array(vector, dtype=np.float64)

    def video(self, frames: Any, descriptors: bool = False) -> VideoFaces:
        """`find` (and `descriptor` when asked) on every frame of uint8 RGB frames [T, H, W, 3]."""
        video = np.asarray(frames)
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] == 0:
            raise UserError(f"frames must be uint8 RGB [T, H, W, 3], got {video.dtype} {video.shape}")
        count = video.shape[0]
        found = np.zeros(count, dtype=bool)
        landmarks = np.full((count, LANDMARKS, 2), np.nan)
        vectors = np.full((count, DESCRIPTOR_DIM), np.nan) if descriptors else None
        for index, frame in enumerate(video):
            face = self.find(frame)
            if face is None:
                continue
            found[index] = True
            landmarks[index] = face.landmarks
            if vectors is not None:
                vectors[index] = self.descriptor(frame, face)
        return VideoFaces(found, landmarks, vectors)
