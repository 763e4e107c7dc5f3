"""Evaluation on real faces offline: dlib's networks behind CSIM/ACD, LMD and the landmark mouth-audio r.

The clips are real photographs of two people whose mouths open with the loudness of real (espeak-ng) speech
(`tests.metrics.real_faces`), 17 frames at 128 px like an ingested dataset. The other metric networks are the
usual random stand-ins, so only the dlib numbers mean anything here. Measured: landmark mouth-audio r of the
ground truth 0.99 (smiling man) and 0.96 (webcam woman); LMD of the still portrait against the first 1.65 px.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dualforce_core.config import load_config
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.evaluation.clips import EvalClip
from dualforce_core.evaluation.config import EvalConfig
from dualforce_core.evaluation.evaluate import evaluate
from dualforce_core.evaluation.scoring import MetricAccumulator
from dualforce_core.metrics import MetricNetworks
from dualforce_core.metrics.dlib_faces import WEIGHT_NAMES
from dualforce_core.timeline import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from dualforce_core.weights import init_random
from dualforce_core.weights.registry import WeightsRegistry
from tests.metrics.real_faces import face_square, loudness, photo, speech, talking_clip

FRAMES = 17
PEOPLE = (("smiling_man", 0), ("webcam_woman", 30))  # (photograph, start of its speech in frames)
SIZE = 128


def talking_person(name: str, audio_offset_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [17, 128, 128, 3], audio float32 at 16 kHz) of `name` saying part of the sentence."""
    audio = speech()[audio_offset_frames * SAMPLES_PER_FRAME :][: FRAMES * SAMPLES_PER_FRAME]
    frames = talking_clip(face_square(photo(name)), loudness(audio, FRAMES))
    small = np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in frames])
    return small, audio


@pytest.fixture(scope="module")
def clips() -> list[EvalClip]:
    return [EvalClip(f"clip-{name}", name, *talking_person(name, offset), FPS) for name, offset in PEOPLE]


@pytest.fixture(scope="module")
def landmark_networks(eval_home: Path) -> MetricNetworks:
    return MetricNetworks.from_registry(WeightsRegistry(eval_home / "weights"), landmarks=True)


def test_landmark_metrics_of_the_ground_truth_and_of_a_still_portrait(
    clips: list[EvalClip], landmark_networks: MetricNetworks
) -> None:
    config = EvalConfig(landmarks=True)
    truth = MetricAccumulator(landmark_networks, config)
    for clip in clips:
        scores = truth.add(clip, None)
        assert scores.gt_lmk_mouth_audio_r == scores.lmk_mouth_audio_r > 0.9  # a real mouth following speech
    exact = truth.metrics()
    assert exact["lmd"] == 0.0 and exact["fvd"] == pytest.approx(0.0, abs=1e-9) and truth.fvd_clips() == 2
    assert exact["face_rate"] == exact["gt_face_rate"] == 1.0
    assert exact["gt_lmk_mouth_audio_r"] == pytest.approx(
        np.mean([c.gt_lmk_mouth_audio_r for c in truth.clips])
    )
    assert {"dlib_faces", "landmarks"} <= set(truth.seconds)

    still = MetricAccumulator(landmark_networks, config)
    scores = still.add(clips[0], np.repeat(clips[0].frames[:1], FRAMES, axis=0))
    assert scores.lmk_mouth_audio_r == 0.0  # a constant opening: no evidence either way
    assert scores.gt_lmk_mouth_audio_r > 0.9
    assert scores.lmd > 1.0  # the ground truth's mouth moves, the still one does not
    assert still.fvd_clips() == 1  # one clip per video (the split metrics, FID's 2048-d maths, are skipped)


def write_mp4(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    """H.264 + AAC, the kind of file `dualforce ingest` takes."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"crf": "16"})
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24")
            picture.pts, picture.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(picture))
        container.mux(video.encode())
        samples = np.ascontiguousarray(audio, dtype=np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024], format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())


@pytest.mark.slow  # ingest two real-face videos, then every metric with dlib's detector and ResNet: ~15 s
def test_real_faces_evaluate_offline_with_dlib_identity_and_landmarks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUALFORCE_HOME", str(tmp_path))
    src = tmp_path / "raw" / "faces"
    src.mkdir(parents=True)
    for name, offset in PEOPLE:
        frames, audio = talking_person(name, offset)
        big = np.stack([cv2.resize(f, (2 * SIZE, 2 * SIZE), interpolation=cv2.INTER_CUBIC) for f in frames])
        write_mp4(src / f"{name}.mp4", big, np.concatenate([audio, np.zeros(SAMPLES_PER_FRAME, np.float32)]))
    ingest_dataset(
        "faces", src, DataConfig(clip_frames=FRAMES, clip_stride=FRAMES, size=SIZE), progress=False
    )
    init_random(
        tmp_path / "weights", ["inception", "i3d", "syncnet"], seed=0
    )  # no ArcFace: dlib measures identity
    overrides = [f"data.clip_frames={FRAMES}", f"data.size={SIZE}", "eval.identity_network=dlib"]
    config = load_config(None, [*overrides, "eval.landmarks=true", "eval.mlflow=false", "eval.samples=0"])

    report = evaluate(None, "faces", config, split="all", ground_truth_only=True, name="real")
    metrics, record = report.metrics, json.loads((report.report_dir / "report.json").read_text())
    assert metrics["csim"] == metrics["gt_csim"] > 0.95  # a real face stays itself while its mouth moves
    assert metrics["acd"] == 0.0 and metrics["lmd"] == 0.0 and metrics["fvd"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["gt_lmk_mouth_audio_r"] > 0.9 and metrics["gt_face_rate"] == 1.0
    protocol = record["protocol"]
    assert protocol["identity_network"] == "dlib" and protocol["landmarks"] is True
    assert "arcface" not in protocol["weights"] and set(WEIGHT_NAMES.values()) <= set(protocol["weights"])
    assert protocol["fvd_clips"] == 2
    markdown = report.markdown
    assert "| FID ↓ | 0 | — | clean-fid `legacy_tensorflow` |" in markdown
    assert "StyleGAN-V `fvd2048_16f`" in markdown and "| LMD ↓ (vs ground truth) | 0 |" in markdown
    assert "dlib ResNet cosine" in markdown and "CSIM/ACD network: dlib ResNet" in markdown
    assert "- LMD: dlib 68-point landmarks" in markdown
    assert "dlib found a face in every frame (CSIM/ACD and LMD and the landmark mouth-audio r)" in markdown
    assert "FID, FVD, ACD and LMD are 0" in markdown
