"""The output mp4, written while frames are generated: H.264 video at 25 fps plus the input speech as AAC.

Audio is muxed incrementally, up to the time the written video has reached, so the file interleaves
properly and nothing waits for the end of a long stream.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from dualforce_core.errors import UserError

AAC_FRAME = 1024


class Mp4Writer:
    def __init__(self, path: Path, fps: int, sample_rate: int, crf: int = 18) -> None:
        self.fps, self.rate = fps, sample_rate
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.container = av.open(str(path), "w", format="mp4")
        except (OSError, av.error.FFmpegError) as err:
            raise UserError(f"cannot write {path}: {err}") from None
        self.video = self.container.add_stream(
            "libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast"}
        )
        self.video.pix_fmt = "yuv420p"
        self.audio = self.container.add_stream("aac", rate=sample_rate, layout="mono")
        self.frames = 0
        self.samples = np.zeros(0, np.float32)
        self.audio_written = 0

    def add_audio(self, samples: np.ndarray) -> None:
        """Queue speech samples (mono float32 at `sample_rate`); they are muxed as the video catches up."""
        self.samples = np.concatenate([self.samples, np.asarray(samples, np.float32).reshape(-1)])

    def write(self, frames: np.ndarray) -> None:
        """uint8 [T, H, W, 3] frames, appended at 25 fps."""
        if self.frames == 0:
            self.video.width, self.video.height = frames.shape[2], frames.shape[1]
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts = self.frames
            video_frame.time_base = Fraction(1, self.fps)
            self.container.mux(self.video.encode(video_frame))
            self.frames += 1
        self._mux_audio(self.frames * self.rate // self.fps)

    def _mux_audio(self, until: int) -> None:
        while self.audio_written + AAC_FRAME <= min(until, self.audio_written + len(self.samples)):
            self._audio_frame(self.samples[:AAC_FRAME])
            self.samples = self.samples[AAC_FRAME:]

    def _audio_frame(self, block: np.ndarray) -> None:
        block = np.pad(block, (0, AAC_FRAME - len(block)))
        frame = av.AudioFrame.from_ndarray(block[None].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self.audio_written
        frame.time_base = Fraction(1, self.rate)
        self.container.mux(self.audio.encode(frame))
        self.audio_written += AAC_FRAME

    def close(self) -> None:
        """Mux the rest of the speech (up to the video's end) and flush both encoders."""
        end = self.frames * self.rate // self.fps
        self._mux_audio(end)
        if len(self.samples) and self.audio_written < end:
            self._audio_frame(self.samples[: end - self.audio_written])
        self.container.mux(self.audio.encode(None))
        self.container.mux(self.video.encode(None))
        self.container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.container.close()
