"""One synthetic clip: its voice, its motion, its look, and the ground truth written beside the mp4.

Each clip draws from its own generator (seed, clip index) and each identity from (seed, identity
index), so a clip's content does not depend on how many other clips are generated with it; speech,
motion and background use separate child streams so changing one never reshuffles the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualforce_core.sample_data.face import Colour, FaceRenderer, make_background
from dualforce_core.sample_data.flame import flame_params
from dualforce_core.sample_data.identity import Identity
from dualforce_core.sample_data.motion import Motion, clip_motion
from dualforce_core.sample_data.speech import Speech, synthesize_speech
from dualforce_core.timeline import FPS


@dataclass(frozen=True)
class SyntheticClip:
    name: str
    index: int
    seed: int
    size: int
    identity: Identity
    speech: Speech
    motion: Motion
    background: np.ndarray  # uint8 [S, S, 3]
    outfit: Colour

    def frames(self) -> Iterator[np.ndarray]:
        renderer = FaceRenderer(self.identity, self.size, self.outfit)
        m = self.motion
        for t in range(m.num_frames):
            yield renderer.render(
                self.background,
                float(m.mouth_open[t]),
                float(m.yaw[t]),
                float(m.pitch[t]),
                float(m.roll[t]),
                float(m.blink[t]),
            )

    def caption(self) -> str:
        return (
            f"A synthetic cartoon person (identity {self.identity.index}, {self.identity.describe()}) "
            "talks to the camera in front of a blurred background, turning and nodding the head and blinking."
        )

    def sidecar(self) -> dict[str, Any]:
        """Ground truth per frame; pose in degrees, mouth_open and blink in [0, 1]."""
        m = self.motion

        def track(values: np.ndarray) -> list[float]:
            return [round(float(v), 6) for v in values]

        flame = flame_params(m.mouth_open, m.blink, m.yaw, m.pitch, m.roll)
        return {
            "name": self.name,
            "identity": self.identity.index,
            "seed": self.seed,
            "clip_index": self.index,
            "fps": FPS,
            "num_frames": m.num_frames,
            "size": self.size,
            "audio_rate": self.speech.rate,
            "audio_samples": len(self.speech.audio),
            "pose_units": "degrees",
            "mouth_open": track(m.mouth_open),
            "yaw": track(m.yaw),
            "pitch": track(m.pitch),
            "roll": track(m.roll),
            "blink": track(m.blink),
            "flame_layout": "expression[0:50] + jaw_pose[50:53] (axis-angle, radians); synthetic stand-in",
            "flame": [track(row) for row in flame],
        }


def synthesize_clip(
    seed: int, index: int, identity: Identity, seconds: float, size: int, audio_rate: int
) -> SyntheticClip:
    speech_seq, motion_seq, look_seq = np.random.SeedSequence(seed, spawn_key=(1, index)).spawn(3)
    num_frames = round(seconds * FPS)
    speech = synthesize_speech(
        np.random.default_rng(speech_seq), num_frames / FPS, audio_rate, identity.f0, identity.formant_scale
    )
    motion = clip_motion(np.random.default_rng(motion_seq), speech.envelope, audio_rate, FPS, num_frames)
    look = np.random.default_rng(look_seq)
    background = make_background(look, size)
    outfit_rgb = look.integers(30, 220, 3)
    outfit: Colour = (int(outfit_rgb[0]), int(outfit_rgb[1]), int(outfit_rgb[2]))
    return SyntheticClip(
        name=f"clip{index:04d}_id{identity.index:03d}",
        index=index,
        seed=seed,
        size=size,
        identity=identity,
        speech=speech,
        motion=motion,
        background=background,
        outfit=outfit,
    )
