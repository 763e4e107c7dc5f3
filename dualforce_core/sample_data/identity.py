"""What makes one synthetic person look and sound like themself across all their clips.

Skin tone and hair colour walk a golden-ratio sequence over the identity index, so neighbouring
identities are always far apart in colour (the evaluation split is by identity, and identity metrics
must have something to tell apart); shape and voice are drawn from the identity's own generator.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

GOLDEN = 0.6180339887498949
HAIR_STYLES = ("short", "fringe", "long")


@dataclass(frozen=True)
class Identity:
    index: int
    skin: tuple[int, int, int]  # RGB
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    hair_style: str
    face_aspect: float  # face half-width / half-height
    face_size: float  # face half-height as a fraction of the frame side
    eye_spacing: float  # eye centre x, in face half-widths
    eye_height: float  # eye centre y, in face half-heights (negative is up)
    eye_size: float  # eye half-width, in face half-heights
    mouth_width: float  # mouth half-width, in face half-heights
    mouth_height: float  # mouth centre y, in face half-heights
    nose_length: float
    f0: float  # mean voice pitch, Hz
    formant_scale: float  # vocal tract length factor (shorter tract, higher formants)

    def describe(self) -> str:
        return f"{_tone_word(self.skin)} skin, {self.hair_style} {_hair_word(self.hair)} hair"


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(255 * r), round(255 * g), round(255 * b)


def make_identity(seed: int, index: int) -> Identity:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, index)))
    offset = float(np.random.default_rng(seed).random())
    tone = (offset + index * GOLDEN) % 1.0
    hair_tone = (offset + 0.5 + index * GOLDEN * 2) % 1.0
    return Identity(
        index=index,
        skin=_rgb(0.03 + 0.07 * tone, 0.3 + 0.35 * (1 - tone), 0.32 + 0.62 * tone),
        hair=_rgb(0.02 + 0.1 * hair_tone, 0.35 + 0.3 * hair_tone, 0.1 + 0.75 * hair_tone),
        iris=_rgb(
            float(rng.uniform(0.05, 0.65)), float(rng.uniform(0.4, 0.8)), float(rng.uniform(0.25, 0.6))
        ),
        lips=_rgb(
            float(rng.uniform(-0.03, 0.02)), float(rng.uniform(0.4, 0.65)), float(rng.uniform(0.45, 0.75))
        ),
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        face_aspect=float(rng.uniform(0.68, 0.86)),
        face_size=float(rng.uniform(0.25, 0.31)),
        eye_spacing=float(rng.uniform(0.36, 0.46)),
        eye_height=float(rng.uniform(-0.22, -0.1)),
        eye_size=float(rng.uniform(0.1, 0.14)),
        mouth_width=float(rng.uniform(0.2, 0.3)),
        mouth_height=float(rng.uniform(0.42, 0.52)),
        nose_length=float(rng.uniform(0.12, 0.2)),
        f0=float(rng.uniform(95.0, 230.0)),
        formant_scale=float(rng.uniform(0.9, 1.15)),
    )


def _tone_word(rgb: tuple[int, int, int]) -> str:
    value = max(rgb) / 255
    return "dark" if value < 0.5 else "medium" if value < 0.75 else "light"


def _hair_word(rgb: tuple[int, int, int]) -> str:
    hue, _, value = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    return "black" if value < 0.3 else "brown" if value < 0.6 else "blond" if hue > 0.08 else "red"
