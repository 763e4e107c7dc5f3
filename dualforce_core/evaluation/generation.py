"""The one step of an evaluation that needs a model: reference portrait + speech → video.

A generator is any callable `(reference_frame uint8 [H, W, 3], audio float32 [N] at 16 kHz) → frames
uint8 [T, H', W', 3] at 25 fps`. The evaluator only ever calls it through `generate_clip`, which checks
what comes back, so a trained checkpoint and a baseline are scored by exactly the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dualforce_core.config import DualForceConfig
from dualforce_core.errors import UserError
from dualforce_core.inference.frontend import portrait_settings
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.models import DualForceModel
from dualforce_core.preprocessing import Preprocessing
from dualforce_core.timeline import FPS, SAMPLE_RATE

Generator = Callable[[np.ndarray, np.ndarray], np.ndarray]


def generate_clip(generator: Generator, reference_frame: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Frames uint8 [T, H, W, 3] for `audio`, checked, so a broken generator fails with a clear message."""
    frames = np.asarray(generator(reference_frame, audio))
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise UserError(
            f"the generator must return uint8 RGB frames [T, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    return frames


def still_generator(reference_frame: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """The frozen-portrait baseline: the reference repeated for the length of the audio.

    The floor every talking-head model must beat on Sync (its lips never move) and the ceiling of
    CSIM (it never drifts from the reference): reporting it next to a model shows where both stand.
    """
    frames = max(1, round(len(audio) * FPS / SAMPLE_RATE))
    return np.repeat(np.asarray(reference_frame, np.uint8)[None], frames, axis=0)


def checkpoint_generator(checkpoint: Path, config: DualForceConfig) -> Generator:
    """The streaming sampler on a saved model (`save_pretrained` directory, e.g. a run's `final/`).

    The reference frame is resized to the model's square size (`inference.size`, else the size it was
    trained at) when the clips were ingested at another size; the whole clip's audio is fed at once.
    """
    record = Preprocessing.load(checkpoint)
    model = DualForceModel.from_pretrained(checkpoint).eval()
    streaming = StreamingGenerator.from_config(config, model, preprocessing=record)
    size, _ = portrait_settings(config, record)

    def generate(reference_frame: np.ndarray, audio: np.ndarray) -> np.ndarray:
        portrait = np.asarray(reference_frame, np.uint8)
        if portrait.shape[:2] != (size, size):
            portrait = np.asarray(cv2.resize(portrait, (size, size), interpolation=cv2.INTER_AREA), np.uint8)
        chunks = [chunk.frames for chunk in streaming.stream(portrait, [np.asarray(audio, np.float32)])]
        return np.concatenate(chunks)

    return generate
