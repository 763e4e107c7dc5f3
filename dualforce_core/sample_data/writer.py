"""Muxes rendered frames and synthesised audio into an mp4 the way a real camera file looks.

H.264 yuv420p at a constant frame rate (frame i has pts i in a 1/fps time base, so every interval is
exactly one frame) plus mono AAC. PyAV bundles ffmpeg; there is no ffmpeg binary to call.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VIDEO_OPTIONS = {"crf": "18", "preset": "veryfast", "g": "25"}
"""Near-transparent quality, fast to encode; a keyframe every second so readers can seek cheaply."""

AUDIO_BIT_RATE = {16000: 64_000, 48000: 128_000}
AUDIO_CHUNK = 1024  # samples per AAC frame


def write_mp4(
    path: Path, frames: Iterable[np.ndarray], size: int, fps: int, audio: np.ndarray, audio_rate: int
) -> None:
    """Write `frames` (RGB uint8 [size, size, 3] each) and mono float `audio` in [-1, 1] to `path`."""
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        video = container.add_stream("libx264", rate=fps, options=VIDEO_OPTIONS)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=audio_rate, layout="mono")
        sound.bit_rate = AUDIO_BIT_RATE.get(audio_rate, 128_000)

        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
            picture.pts = index
            picture.time_base = Fraction(1, fps)
            container.mux(video.encode(picture))
        container.mux(video.encode())

        samples = np.ascontiguousarray(audio, dtype=np.float32)
        for start in range(0, len(samples), AUDIO_CHUNK):
            chunk = av.AudioFrame.from_ndarray(
                samples[None, start : start + AUDIO_CHUNK], format="fltp", layout="mono"
            )
            chunk.sample_rate = audio_rate
            chunk.pts = start
            chunk.time_base = Fraction(1, audio_rate)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())
