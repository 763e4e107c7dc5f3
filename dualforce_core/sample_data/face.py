"""Draws one frame of a synthetic talking face with OpenCV primitives (anti-aliased, sub-pixel).

The head is an ellipsoid: each feature (eyes, brows, nose, mouth, hair line) sits on its surface,
is rotated by yaw/pitch/roll and projected orthographically, so head turns shift the features against
the outline (parallax) and foreshorten the far side. The whole head also swings about a pivot at the
neck, which moves and scales the face in the frame. The jaw drop lengthens the lower half of the face
and opens the lips; blinks close the eye openings. A frame costs a few dozen draw calls — no per-pixel
Python work — so thousands of frames render in seconds.
"""

from __future__ import annotations

import cv2
import numpy as np

from dualforce_core.sample_data.identity import Identity

Colour = tuple[int, int, int]

SHIFT = 4
"""Sub-pixel bits for OpenCV drawing: coordinates are passed multiplied by 2**SHIFT."""

HEAD_DEPTH = 0.9
"""Ellipsoid semi-axis towards the camera, in face half-heights."""


def _scaled(colour: Colour, factor: float) -> Colour:
    r, g, b = (min(255, round(c * factor)) for c in colour)
    return r, g, b


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted two-colour gradient with a few soft blobs (a room out of focus): uint8 [S, S, 3]."""
    low, high = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    axis = np.linspace(0.0, 1.0, size)
    angle = rng.uniform(0, np.pi)
    ramp = np.cos(angle) * axis[None, :] + np.sin(angle) * axis[:, None]
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    image = low + (high - low) * ramp[..., None]
    yy, xx = np.mgrid[0:size, 0:size] / size
    for _ in range(int(rng.integers(3, 6))):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.25)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
        image += blob[..., None] * rng.uniform(-50, 50, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Local head frame (x right, y down, z to camera) to camera frame, angles in radians."""
    cy, sy, cp, sp, cr, sr = (
        np.cos(yaw),
        np.sin(yaw),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(roll),
        np.sin(roll),
    )
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_roll @ r_pitch @ r_yaw


class FaceRenderer:
    """Renders frames of one identity at `size`×`size`; `outfit` is the clothing colour of the clip."""

    def __init__(self, identity: Identity, size: int, outfit: Colour) -> None:
        self.identity = identity
        self.size = size
        self.outfit = outfit
        self.half_height = identity.face_size * size  # face half-height in pixels at neutral pose

    def render(
        self, background: np.ndarray, mouth_open: float, yaw: float, pitch: float, roll: float, blink: float
    ) -> np.ndarray:
        """One RGB uint8 frame; pose in degrees, mouth_open and blink in [0, 1]."""
        ident, s = self.identity, self.size
        img = background.copy()
        yaw_r, pitch_r, roll_r = np.radians([yaw, pitch, roll])
        rot = _rotation(yaw_r, pitch_r, roll_r)
        unit = self.half_height * (1.0 + 0.06 * np.sin(pitch_r))
        pivot = np.array([0.5 * s, 0.45 * s + 1.7 * self.half_height])
        offset = np.array([0.35 * np.sin(yaw_r), -1.7 - 0.35 * np.sin(pitch_r)]) * self.half_height
        centre = (
            pivot + np.array([[np.cos(roll_r), -np.sin(roll_r)], [np.sin(roll_r), np.cos(roll_r)]]) @ offset
        )
        a = ident.face_aspect

        def surface(x: float, y: float, lift: float = 0.0) -> np.ndarray:
            z = HEAD_DEPTH * np.sqrt(max(0.0, 1.0 - (x / a) ** 2 - y**2)) + lift
            return np.array([x, y, z])

        def project(point: np.ndarray) -> np.ndarray:
            return centre + unit * (rot @ point)[:2]

        def foreshorten(point: np.ndarray) -> tuple[float, float]:
            """Horizontal and vertical shrink of a small patch whose surface normal turns away."""
            normal = rot @ np.array([point[0] / a**2, point[1], point[2] / HEAD_DEPTH**2])
            nx, ny, _ = normal / np.linalg.norm(normal)
            return float(np.sqrt(max(0.05, 1 - nx**2))), float(np.sqrt(max(0.05, 1 - ny**2)))

        def ellipse(
            at: np.ndarray,
            axes: tuple[float, float],
            colour: Colour,
            arc: tuple[int, int] = (0, 360),
            thick: int = -1,
        ) -> None:
            k = 1 << SHIFT
            cv2.ellipse(
                img,
                (round(at[0] * k), round(at[1] * k)),
                (max(1, round(axes[0] * unit * k)), max(1, round(axes[1] * unit * k))),
                float(roll),
                arc[0],
                arc[1],
                colour,
                thick,
                cv2.LINE_AA,
                SHIFT,
            )

        skin, shade = ident.skin, _scaled(ident.skin, 0.82)
        thin = max(1, round(0.035 * self.half_height))

        # Body: torso and neck follow the head only partly.
        body = np.array([0.5 * s + 0.3 * (centre[0] - 0.5 * s), 0.45 * s + 2.5 * self.half_height])
        ellipse(body, (1.9, 1.1), self.outfit)
        neck_top = project(surface(0.0, 0.6))
        neck_w = 0.42 * a * unit
        neck = np.array(
            [
                [neck_top[0] - neck_w, neck_top[1]],
                [neck_top[0] + neck_w, neck_top[1]],
                [body[0] + neck_w * 1.1, body[1] - 0.9 * unit],
                [body[0] - neck_w * 1.1, body[1] - 0.9 * unit],
            ]
        )
        cv2.fillConvexPoly(img, np.round(neck * (1 << SHIFT)).astype(np.int32), shade, cv2.LINE_AA, SHIFT)

        # Hair behind the head, then ears, then the face (upper half + jaw-dropped lower half).
        if ident.hair_style == "long":
            ellipse(project(np.array([0.0, 0.25, -0.3])), (a * 1.22, 1.3), ident.hair)
        else:
            ellipse(project(np.array([0.0, -0.1, -0.2])), (a * 1.07, 1.04), ident.hair)
        for side in (-1.0, 1.0):
            ellipse(project(np.array([side * a * 0.97, 0.05, -0.05])), (0.13, 0.24), shade)
        face_centre = project(np.zeros(3))
        jaw = 1.0 + 0.12 * mouth_open
        ellipse(face_centre, (a, 1.0), shade, (180, 360))
        ellipse(face_centre, (a, jaw), shade, (0, 180))
        light = face_centre + unit * np.array([-0.06 - 0.1 * np.sin(yaw_r), -0.05])
        ellipse(light, (a * 0.9, 0.9), skin, (180, 360))
        ellipse(light, (a * 0.9, 0.9 * jaw), skin, (0, 180))

        # Eyes and brows; brows lift a little when the mouth opens wide.
        opening = 1.0 - blink
        for side in (-1.0, 1.0):
            x = side * ident.eye_spacing * a
            eye = surface(x, ident.eye_height)
            fx, fy = foreshorten(eye)
            at, w = project(eye), ident.eye_size * fx
            h = 0.55 * ident.eye_size * fy
            if opening > 0.12:
                ellipse(at, (w, h * opening), (240, 240, 236))
                iris = min(0.5 * ident.eye_size, h * opening)
                ellipse(at, (0.5 * ident.eye_size * fx, iris), ident.iris)
                ellipse(at, (0.22 * ident.eye_size * fx, min(0.22 * ident.eye_size, iris)), (20, 20, 24))
                ellipse(at, (w, h * opening), (40, 30, 30), (180, 360), thin)
            else:
                ellipse(at, (w, 0.25 * h), (40, 30, 30), (0, 180), thin)
            brow = project(surface(x, ident.eye_height - 0.2 - 0.05 * mouth_open))
            ellipse(brow, (w * 1.15, 0.08), ident.hair, (200, 340), max(1, 2 * thin))

        # Nose: a ridge to a tip that stands off the surface, so it swings with yaw.
        bridge = project(surface(0.0, ident.eye_height + 0.08))
        tip_point = surface(0.0, 0.2, lift=ident.nose_length)
        tip = project(tip_point)
        k = 1 << SHIFT
        cv2.line(
            img,
            (round(bridge[0] * k), round(bridge[1] * k)),
            (round(tip[0] * k), round(tip[1] * k)),
            _scaled(skin, 0.72),
            thin,
            cv2.LINE_AA,
            SHIFT,
        )
        nfx, _ = foreshorten(tip_point)
        ellipse(tip, (0.09 * nfx, 0.04), _scaled(skin, 0.6))

        # Mouth: the lower lip drops with the jaw; the cavity and teeth show as it opens.
        mouth_point = surface(0.0, ident.mouth_height + 0.07 * mouth_open)
        fx, fy = foreshorten(mouth_point)
        mouth = project(mouth_point)
        width = ident.mouth_width * fx * (1.0 - 0.15 * mouth_open)
        ellipse(mouth, (width, (0.05 + 0.2 * mouth_open) * fy), ident.lips)
        if mouth_open > 0.04:
            cavity = 0.17 * mouth_open * fy
            ellipse(mouth, (0.8 * width, cavity), (70, 22, 30))
            if mouth_open > 0.2:
                teeth = mouth + unit * (rot[:2, :2] @ np.array([0.0, -0.6 * cavity]))
                ellipse(teeth, (0.6 * width, 0.3 * cavity), (236, 234, 222))
        else:
            ellipse(mouth, (0.9 * width, 0.01), _scaled(ident.lips, 0.6), (0, 180), thin)

        # Hair in front: a cap whose lower edge is the hairline.
        if ident.hair_style == "short":
            ellipse(project(np.array([0.0, -0.6, 0.3])), (a * 0.85, 0.45), ident.hair, (180, 360))
        else:
            ellipse(project(np.array([0.0, -0.45, 0.3])), (a * 0.95, 0.6), ident.hair, (180, 360))
        return img
