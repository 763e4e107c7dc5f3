"""Real inputs for the face metrics: photographs of five different people, real speech, a talking clip.

The photographs ship with Debian's `opencv-doc` and the speech is synthesised by `espeak-ng` (both system
packages that `make system-deps` installs); a test skips, naming the package, when one is missing. dlib's
networks are the real files of the installed `face_recognition_models` package, loaded once per session.

The talking clip is a real photograph whose lower lip and chin are pulled down per frame in proportion to
the speech's loudness (a smooth vertical warp below the mouth): real skin, teeth and lips, moving with a
known audio envelope, so landmark metrics have something true to find.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io.wavfile
from scipy.signal import resample_poly

from dualforce_core.metrics.dlib_faces import CROP_SIZE, DlibFaces
from dualforce_core.metrics.mouth import audio_envelope
from dualforce_core.timeline import FPS, SAMPLE_RATE

OPENCV_DOC = Path("/usr/share/doc/opencv-doc")
PHOTOS = {  # one photograph per person, five people
    "smiling_man": "opencv4/html/227943776_1.jpg",  # face swap tutorial, 434 px, teeth showing
    "bearded_man": "opencv4/html/230501201_1.jpg",  # face swap tutorial, 824x584
    "lena": "opencv4/html/faceDetection.png",  # the classic test portrait (a detector's box drawn on it)
    "messi": "examples/data/messi5.jpg",  # a football photo: a 36 px face
    "webcam_woman": "opencv4/html/Cascade_Classifier_Tutorial_Result_Haar.jpg",  # with detection overlays
}
SENTENCE = "The quick brown fox jumps over the lazy dog, then it sleeps in the sun."


def photo(name: str) -> np.ndarray:
    """uint8 RGB photograph `name` of PHOTOS."""
    path = OPENCV_DOC / PHOTOS[name]
    if not path.is_file():
        pytest.fail(f"{path} is missing: install Debian's opencv-doc (make system-deps)")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@lru_cache(maxsize=1)
def dlib_faces() -> DlibFaces:
    return DlibFaces()


@lru_cache(maxsize=1)
def _speech() -> np.ndarray:
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True, capture_output=True)
        rate, samples = scipy.io.wavfile.read(wav)
    audio = resample_poly(samples.astype(np.float64) / 32768.0, SAMPLE_RATE, rate)
    return audio.astype(np.float32)


def speech() -> np.ndarray:
    """Real synthesised English speech, float32 mono at 16 kHz (about 4 s)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: install Debian's espeak-ng (make system-deps)")
    return _speech().copy()


def face_square(image: np.ndarray, scale: float = 1.8, size: int = CROP_SIZE) -> np.ndarray:
    """A square `scale` × the detected face's side, centred on it, resized to `size` (a face-centred clip frame)."""
    face = dlib_faces().find(image)
    assert face is not None, "no face in the photograph"
    left, top, right, bottom = face.box
    side = round(scale * max(right - left, bottom - top))
    cx, cy = (left + right) // 2, (top + bottom) // 2
    pad = side  # reflect-pad so a face near the border still gets its full square
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    square = padded[
        cy + pad - side // 2 : cy + pad + side - side // 2, cx + pad - side // 2 : cx + pad + side - side // 2
    ]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def jitter(
    image: np.ndarray,
    dx: float = 0,
    dy: float = 0,
    scale: float = 1.0,
    angle: float = 0,
    jpeg: int | None = None,
) -> np.ndarray:
    """Shift by (dx, dy) px, scale and rotate (degrees) about the centre, then optionally a JPEG round trip."""
    height, width = image.shape[:2]
    matrix = np.asarray(cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale), dtype=np.float64)
    matrix[:, 2] += np.array([dx, dy], dtype=np.float64)
    moved = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    if jpeg is None:
        return moved
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(moved, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg]
    )
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert ok and decoded is not None
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def loudness(audio: np.ndarray, frames: int) -> np.ndarray:
    """The audio's RMS per 40 ms video frame, scaled to a maximum of 1."""
    envelope = audio_envelope(audio, SAMPLE_RATE, FPS, frames)
    return envelope / envelope.max()


def talking_clip(image: np.ndarray, opening: np.ndarray, max_open_px: float = 0.05 * CROP_SIZE) -> np.ndarray:
    """Frames [T, H, W, 3] of `image` (a face square) with the mouth opened by opening[t] ∈ [0, 1] of max_open_px.

    Below the lips' meeting line the picture is pulled down by up to max_open_px: most at the line, fading
    over about a mouth width below it and to the sides, so the lower lip and chin move and the upper lip stays.
    """
    face = dlib_faces().find(image)
    assert face is not None, "no face in the frame"
    points = face.landmarks
    line = (points[62, 1] + points[66, 1]) / 2
    centre, width = points[48:68, 0].mean(), points[54, 0] - points[48, 0]
    height, wide = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:wide].astype(np.float32)
    across = np.exp(-(((xs - centre) / (0.8 * width)) ** 2))
    below = np.clip((ys - line) / 3.0, 0, 1) * np.exp(-np.clip(ys - line, 0, None) / (1.2 * width))
    frames = []
    for amount in np.asarray(opening, dtype=np.float32):
        source_y = (ys - amount * max_open_px * across * below).astype(np.float32)
        frames.append(cv2.remap(image, xs, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)
