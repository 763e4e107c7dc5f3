"""A talking-clip test corpus made of REAL media, with exact ground truth, for curation tests and benchmarks.

Real photographs from Debian's `opencv-doc` (three people, one of them only as a genuinely blurred photo,
plus indoor scenes without a face) are animated with slow camera motion — pan, zoom, roll — by
`cv2.warpAffine`, and joined with hard cuts into one H.264 + AAC mp4 whose audio is real synthetic speech
from `espeak-ng` (one sentence per shot). Because every frame is a known similarity transform of a still
photo, the ground truth is exact: the shot boundaries, who is in each frame, and each face's 68 landmarks
(dlib's fit on the still photo, carried through the transform).

`cut_benchmark()` adds shots of real video (the `Megamind.avi` trailer, hand-labelled cuts at frames 1, 98,
154 and 200; the `vtest.avi` street scene and `tree.avi`, which have none) to measure the cut detector on
motion the photographs cannot show.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import soundfile as sf

from dualforce_core.curation.align import crop_affine, crop_rect, face_points, invert_affine, transform_points
from dualforce_core.curation.config import AlignConfig
from dualforce_core.curation.faces import FaceModels
from dualforce_core.errors import UserError

OPENCV_DOC = Path("/usr/share/doc/opencv-doc")
PHOTOS: dict[str, tuple[str, tuple[int, int, int, int] | None]] = {
    "A": ("opencv4/html/227943776_1.jpg", None),
    "B": ("opencv4/html/230501201_1.jpg", None),
    "C": ("opencv4/html/example.jpg", (0, 0, 387, 580)),  # the left, unannotated panel
    "D": ("opencv4/html/blurred.png", None),  # a genuinely defocused portrait
}
SCENES = {
    "building": "examples/data/building.jpg",
    "home": "examples/data/home.jpg",
    "fruits": "examples/data/fruits.jpg",
    "stuff": "examples/data/stuff.jpg",
    "baboon": "examples/data/baboon.jpg",
    "starry_night": "examples/data/starry_night.jpg",
    "lena_sharp": "opencv4/html/faceDetection.png",
    "julia": "opencv4/html/julia_facedetect_sample.jpg",
    "messi": "examples/data/messi5.jpg",
    "aero": "examples/data/aero1.jpg",
    "board": "examples/data/board.jpg",
    "orange": "examples/data/orange.jpg",
}
MEGAMIND_CUTS = (1, 98, 154, 200)
"""Hand-labelled (by looking at every frame around each histogram peak): first frames of new shots."""
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things.",
    "A large size in stockings is hard to sell.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "Four hours of steady work faced us.",
)


@dataclass
class Layer:
    """A photo placed in the frame by a similarity transform that moves linearly over the shot."""

    photo: str
    face_px: float = 0.0
    """Landmark extent in frame pixels at the start (0: a scene, scaled to cover the frame)."""
    centre: tuple[float, float] = (0.5, 0.5)
    """Face centre (scene centre) in frame fractions at the start."""
    pan: tuple[float, float] = (0.0, 0.0)
    """Total movement over the shot, frame pixels."""
    zoom: float = 1.0
    """Scale at the end of the shot relative to the start."""
    roll: float = 0.0
    """Rotation at the end of the shot, degrees (counter-clockwise on screen)."""
    region: tuple[float, float, float, float] | None = None
    """Where in the frame the layer is visible (x0, y0, x1, y1 fractions); None: everywhere."""


@dataclass
class Shot:
    name: str
    frames: int
    layers: list[Layer]
    expect: str
    """What curation should make of it: clip, no_face, several_faces, tiny_face, blur, short_track."""
    sentence: str = ""


@dataclass
class Truth:
    """Ground truth of a rendered corpus video."""

    width: int
    height: int
    fps: int
    shots: list[dict]
    cuts: list[int]
    faces: list[list[dict]] = field(default_factory=list)
    """Per frame: [{identity, landmarks [68][2], layer}] of every visible face."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Truth:
        return cls(**json.loads(path.read_text()))


def check_media() -> None:
    """Fail with what to install when the real media this corpus is made of is missing."""
    missing = [name for name, (rel, _) in PHOTOS.items() if not (OPENCV_DOC / rel).is_file()]
    if missing or not (OPENCV_DOC / SCENES["building"]).is_file():
        raise UserError("the curation corpus needs Debian's opencv-doc (apt-get install opencv-doc)")
    if shutil.which("espeak-ng") is None:
        raise UserError("the curation corpus needs espeak-ng (apt-get install espeak-ng)")


def load_image(name: str) -> np.ndarray:
    """RGB uint8 of a corpus photo or scene."""
    if name in PHOTOS:
        rel, box = PHOTOS[name]
    else:
        rel, box = SCENES[name], None
    bgr = cv2.imread(str(OPENCV_DOC / rel), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"cannot read {OPENCV_DOC / rel} (apt-get install opencv-doc)")
    if box is not None:
        x0, y0, x1, y1 = box
        bgr = bgr[y0:y1, x0:x1]
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def photo_landmarks(models: FaceModels, rgb: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks of the largest face of a still photo: the corpus's ground truth."""
    found = models.detect(rgb)
    if not found:
        raise UserError("no face found in a corpus photo")
    best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    return models.landmarks(rgb, best.box)


def default_shots() -> list[Shot]:
    """The curation corpus: every case the issue names, each with its expected outcome."""
    return [
        Shot("A_pan", 32, [Layer("A", 112, (0.45, 0.5), pan=(40, -8), zoom=1.12)], "clip"),
        Shot("B_roll", 32, [Layer("B", 118, (0.5, 0.52), pan=(-16, 0), zoom=0.92, roll=9)], "clip"),
        Shot("no_face", 12, [Layer("building", pan=(-30, 10))], "no_face"),
        Shot(
            "two_faces",
            12,
            [
                Layer("B", 96, (0.25, 0.5), pan=(6, 0), region=(0.0, 0.0, 0.5, 1.0)),
                Layer("C", 96, (0.75, 0.5), pan=(-6, 0), region=(0.5, 0.0, 1.0, 1.0)),
            ],
            "several_faces",
        ),
        Shot(
            "tiny_face",
            12,
            [
                Layer("home", pan=(12, 0)),
                Layer("A", 44, (0.7, 0.45), pan=(12, 0), region=(0.56, 0.22, 0.84, 0.68)),
            ],
            "tiny_face",
        ),
        Shot(
            "C_with_inset",
            26,
            [
                Layer("C", 120, (0.4, 0.52), pan=(20, 0), zoom=1.05),
                Layer("B", 62, (0.86, 0.24), region=(0.74, 0.0, 1.0, 0.5)),
            ],
            "clip",
        ),
        Shot("D_blurred", 18, [Layer("D", 112, (0.5, 0.5), pan=(0, 12), zoom=1.05)], "blur"),
        Shot("B_short", 9, [Layer("B", 110, (0.5, 0.5), zoom=1.03)], "short_track"),
        Shot("A_again", 28, [Layer("A", 104, (0.55, 0.5), pan=(-36, 6), zoom=0.95, roll=-6)], "clip"),
    ]


def _similarity(scale: float, degrees: float, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2×3 affine: rotate (counter-clockwise on screen) and scale about `source`, then move it to `target`."""
    angle = math.radians(degrees)
    linear = scale * np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    return np.concatenate([linear, (target - linear @ source)[:, None]], axis=1)


class Renderer:
    """Renders shots of corpus photos; caches each photo's ground-truth landmarks."""

    def __init__(self, width: int, height: int, models: FaceModels) -> None:
        self.width, self.height = width, height
        self.models = models
        self._images: dict[str, np.ndarray] = {}
        self._landmarks: dict[str, np.ndarray] = {}

    def image(self, name: str) -> np.ndarray:
        if name not in self._images:
            self._images[name] = load_image(name)
        return self._images[name]

    def landmarks(self, name: str) -> np.ndarray:
        if name not in self._landmarks:
            self._landmarks[name] = photo_landmarks(self.models, self.image(name))
        return self._landmarks[name]

    def transform(self, layer: Layer, u: float) -> np.ndarray:
        image = self.image(layer.photo)
        size = np.array([self.width, self.height], np.float64)
        zoom = 1.0 + (layer.zoom - 1.0) * u
        target = np.asarray(layer.centre) * size + np.asarray(layer.pan) * u
        if layer.face_px > 0:
            points = self.landmarks(layer.photo)
            base = layer.face_px / crop_rect(points).extent
            source = points.mean(axis=0)
        else:
            height, width = image.shape[:2]
            base = 1.1 * max(self.width / width, self.height / height)
            source = np.array([width / 2, height / 2])
        return _similarity(base * zoom, layer.roll * u, source, target)

    def frame(self, shot: Shot, index: int) -> tuple[np.ndarray, list[dict]]:
        u = index / max(shot.frames - 1, 1)
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        faces: list[dict] = []
        for number, layer in enumerate(shot.layers):
            matrix = self.transform(layer, u)
            warped = cv2.warpAffine(
                self.image(layer.photo),
                matrix,
                (self.width, self.height),
                flags=cv2.INTER_AREA if matrix[0, 0] ** 2 + matrix[0, 1] ** 2 < 1 else cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            x0, y0, x1, y1 = self._region(layer)
            canvas[y0:y1, x0:x1] = warped[y0:y1, x0:x1]
            if layer.face_px > 0:
                points = self.landmarks(layer.photo) @ matrix[:, :2].T + matrix[:, 2]
                centre = points.mean(axis=0)
                if x0 <= centre[0] < x1 and y0 <= centre[1] < y1:
                    faces.append({"identity": layer.photo, "landmarks": points.tolist(), "layer": number})
        return canvas, faces

    def _region(self, layer: Layer) -> tuple[int, int, int, int]:
        if layer.region is None:
            return 0, 0, self.width, self.height
        fx0, fy0, fx1, fy1 = layer.region
        return (
            round(fx0 * self.width),
            round(fy0 * self.height),
            round(fx1 * self.width),
            round(fy1 * self.height),
        )


def speak(text: str, out: Path) -> tuple[np.ndarray, int]:
    """Real synthetic speech from espeak-ng: (mono float32 samples, rate)."""
    if shutil.which("espeak-ng") is None:
        raise UserError("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-s", "165", "-w", str(out), text], check=True, capture_output=True)
    samples, rate = sf.read(str(out), dtype="float32", always_2d=False)
    return np.asarray(samples, np.float32), int(rate)


def write_talking_video(
    path: Path, frames: list[np.ndarray], speech: np.ndarray, rate: int, fps: int
) -> None:
    """H.264 (crf 16) + AAC mp4 with PyAV: a real talking-clip file."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": "16", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        chunk = 1024
        for start in range(0, len(speech), chunk):
            piece = np.ascontiguousarray(speech[start : start + chunk][None, :])
            aframe = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            aframe.sample_rate, aframe.pts, aframe.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(aframe))
        container.mux(audio.encode())


def build_corpus(
    out_dir: Path,
    models: FaceModels,
    shots: list[Shot] | None = None,
    width: int = 384,
    height: int = 288,
    fps: int = 25,
    name: str = "corpus",
) -> tuple[Path, Truth]:
    """Render `shots` into `out_dir/<name>.mp4` (+ `<name>.json` ground truth); returns both."""
    check_media()
    shots = shots if shots is not None else default_shots()
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(width, height, models)
    frames: list[np.ndarray] = []
    truth = Truth(width=width, height=height, fps=fps, shots=[], cuts=[])
    speech: list[np.ndarray] = []
    rate = 22050
    with tempfile.TemporaryDirectory() as scratch:
        for number, shot in enumerate(shots):
            start = len(frames)
            if start:
                truth.cuts.append(start)
            for index in range(shot.frames):
                rgb, faces = renderer.frame(shot, index)
                frames.append(rgb)
                truth.faces.append(faces)
            sentence = shot.sentence or SENTENCES[number % len(SENTENCES)]
            samples, rate = speak(sentence, Path(scratch) / f"{number}.wav")
            length = round(shot.frames * rate / fps)
            speech.append(np.pad(samples[:length], (0, max(0, length - len(samples)))))
            truth.shots.append(
                {
                    "name": shot.name,
                    "start": start,
                    "end": len(frames),
                    "expect": shot.expect,
                    "text": sentence,
                }
            )
    path = out_dir / f"{name}.mp4"
    write_talking_video(path, frames, np.concatenate(speech), rate, fps)
    truth.save(out_dir / f"{name}.json")
    return path, truth


def decode_rgb(path: Path, start: int = 0, stop: int | None = None) -> list[np.ndarray]:
    """RGB frames [start, stop) of a video file."""
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if stop is not None and index >= stop:
                break
            if index >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def cut_benchmark(models: FaceModels, seed: int = 0) -> list[tuple[str, list[np.ndarray], list[int]]]:
    """(name, frames, true cut frames) sets of real content for measuring the cut detector.

    - `megamind`: the whole trailer excerpt (270 frames, 4 hand-labelled cuts, fast character motion);
    - `vtest`: 300 frames of a street scene (pedestrians, no cut): every detection is a false alarm;
    - `splice`: 24 shots of 8–20 frames — every corpus photo and scene with random pan/zoom/roll, and
      cut-free pieces of the three real videos — joined by hard cuts (a cut between two pieces of the
      same source is still a cut: they are different moments).
    """
    check_media()
    data = OPENCV_DOC / "examples/data"
    megamind = decode_rgb(data / "Megamind.avi")
    vtest = decode_rgb(data / "vtest.avi", 0, 300)
    tree = decode_rgb(data / "tree.avi")
    rng = np.random.default_rng(seed)
    renderer = Renderer(384, 288, models)
    names = [*PHOTOS, *SCENES]
    pieces: list[list[np.ndarray]] = []
    megamind_shots = [(2, 97), (99, 153), (155, 199), (201, 269)]
    for number in range(24):
        length = int(rng.integers(8, 21))
        kind = number % 4
        if kind == 3:
            source = [megamind, vtest, tree][number // 4 % 3]
            if source is megamind:
                lo, hi = megamind_shots[number // 4 % len(megamind_shots)]
            else:
                lo, hi = 0, len(source)
            begin = int(rng.integers(lo, max(lo + 1, hi - length)))
            piece = [
                cv2.resize(f, (384, 288), interpolation=cv2.INTER_AREA)
                for f in source[begin : begin + length]
            ]
        else:
            name = names[int(rng.integers(0, len(names)))]
            face = name in PHOTOS
            layer = Layer(
                name,
                float(rng.uniform(70, 140)) if face else 0.0,
                (float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.4, 0.6))),
                pan=(float(rng.uniform(-40, 40)), float(rng.uniform(-15, 15))),
                zoom=float(rng.uniform(0.9, 1.15)),
                roll=float(rng.uniform(-8, 8)),
            )
            shot = Shot(name, length, [layer], "")
            piece = [renderer.frame(shot, i)[0] for i in range(length)]
        pieces.append(piece)
    splice: list[np.ndarray] = []
    cuts: list[int] = []
    for piece in pieces:
        if splice:
            cuts.append(len(splice))
        splice.extend(piece)
    return [("megamind", megamind, list(MEGAMIND_CUTS)), ("vtest", vtest, []), ("splice", splice, cuts)]


def truth_face(truth: Truth, frame: int, landmarks: np.ndarray) -> dict:
    """The ground-truth face of `frame` nearest to tracked landmarks (source pixels)."""
    return min(truth.faces[frame], key=lambda f: float(np.abs(np.asarray(f["landmarks"]) - landmarks).mean()))


def centring_errors(clips: list, truth: Truth, align: AlignConfig | None = None) -> np.ndarray:
    """Per clip frame: [eye-centre error px, mouth-centre error px, crop-side error (ratio − 1)].

    The reference is the aligned crop of the ground-truth landmarks; both crops are at the clip's size and
    are compared on the ground-truth eye centre and mouth centre.
    """
    rows = []
    for clip in clips:
        for n, frame in enumerate(range(clip.start, clip.end)):
            source = transform_points(clip.landmarks[n], invert_affine(clip.affines[n]))
            points = np.asarray(truth_face(truth, frame, source)["landmarks"])
            left, right, mouth = face_points(points)
            probes = np.stack([(left + right) / 2, mouth])
            ideal = crop_affine(points, clip.crop_size, align)
            error = np.linalg.norm(
                transform_points(probes, clip.affines[n]) - transform_points(probes, ideal), axis=1
            )
            side = math.sqrt(np.linalg.det(ideal[:, :2]) / np.linalg.det(clip.affines[n][:, :2])) - 1
            rows.append([error[0], error[1], side])
    return np.asarray(rows, np.float64).reshape(-1, 3)
