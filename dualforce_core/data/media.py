"""Video and audio in and out of bytes, and the streaming decode that ingestion runs on.

Everything goes through PyAV (there is no ffmpeg binary) so one library owns every container detail.
Clip video is stored in mp4 as lossless RGB H.264 by default (`data.video_codec=lossless`): features are
extracted from the decoded clip while the inference portrait never meets a codec, and only a bit-exact round
trip gives both the same pixels. `h264` (yuv420p at `data.video_crf`) takes 1/40–1/140 of the bytes for
storage-limited datasets, at a measured 38–42 dB from the crop (docs/benchmarks.md). Lossless RGB H.264 (High
4:4:4 Predictive) plays in FFmpeg-based players, not in browsers. Clip audio is 16-bit FLAC (lossless at the
16-bit precision speech arrives in, and much smaller than raw PCM).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
import soundfile as sf

from dualforce_core.data.config import VideoCodec
from dualforce_core.timeline import FPS

LOSSLESS_PRESET = "ultrafast"
"""libx264 preset of lossless blobs: 5–6× faster to encode and ~2.5× faster to decode than veryfast, for
~17 % more bytes (docs/benchmarks.md); being lossless, every preset decodes to the same frames."""
VFR_TOLERANCE = 0.25
"""A frame interval further than this fraction from the median interval marks the stream as VFR."""


class MediaError(Exception):
    """A source that cannot be used; `reason` is the short code written to the `rejects` table."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def encode_video(
    frames: np.ndarray, fps: int, crf: int = 18, preset: str = "veryfast", *, codec: VideoCodec = "lossless"
) -> bytes:
    """An mp4 without audio; decoding it gives back exactly `len(frames)` frames.

    `lossless` (libx264rgb at crf 0 on the RGB samples themselves: no colour conversion) decodes to the very
    same uint8 frames; `h264` is yuv420p at `crf` and `preset`.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    encoder: Literal["libx264rgb", "libx264"]
    if codec == "lossless":
        encoder, pix_fmt, options = "libx264rgb", "rgb24", {"crf": "0", "preset": LOSSLESS_PRESET}
    elif codec == "h264":
        encoder, pix_fmt, options = "libx264", "yuv420p", {"crf": str(crf), "preset": preset}
    else:
        raise ValueError(f"codec must be lossless or h264, got {codec!r}")
    _, height, width, _ = frames.shape
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(encoder, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts = index
            video_frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def decode_video(blob: bytes) -> np.ndarray:
    """All frames of an encoded video as uint8 [T, H, W, 3] RGB."""
    with av.open(io.BytesIO(blob), "r") as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def encode_audio(samples: np.ndarray, rate: int) -> bytes:
    """Mono float samples in [-1, 1] as 16-bit FLAC; the sample count round-trips exactly."""
    buffer = io.BytesIO()
    sf.write(
        buffer, np.clip(np.asarray(samples, np.float32), -1.0, 1.0), rate, format="FLAC", subtype="PCM_16"
    )
    return buffer.getvalue()


def decode_audio(blob: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(blob), dtype="float32", always_2d=False)
    return samples, int(rate)


@dataclass(frozen=True)
class Probe:
    """What the container says about a source, read by demuxing only (no decoding)."""

    width: int
    height: int
    start_s: float
    frame_count: int
    duration_s: float
    native_fps: float
    variable_rate: bool
    has_audio: bool


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError as err:
        raise MediaError("vanished", f"file disappeared before it could be read: {err}") from None
    except (PermissionError, IsADirectoryError) as err:
        raise MediaError("unreadable", f"cannot open for reading: {err}") from None
    except av.error.FFmpegError as err:
        raise MediaError("corrupt", f"not a readable media container: {err}") from None


def probe(path: Path) -> Probe:
    """Frame count, size, duration and rate regularity from the packet timestamps of the video stream."""
    with _open(path) as container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise MediaError("no_video", f"no video stream ({kinds})")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        has_audio = bool(container.streams.audio)
        declared = stream.frames
        times: list[float] = []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size > 0 and packet.time_base is not None:
                    times.append(float(packet.pts * packet.time_base))
        except av.error.FFmpegError as err:
            raise MediaError("corrupt", f"container breaks off while reading packets: {err}") from None
    if not times or width <= 0 or height <= 0:
        raise MediaError("corrupt", "video stream holds no frames")
    if declared and len(times) < declared:
        raise MediaError("corrupt", f"truncated: {len(times)} of the {declared} frames its index lists")
    times.sort()
    intervals = np.diff(np.asarray(times))
    if intervals.size:
        median = float(np.median(intervals))
        step = median if median > 0 else 1.0 / FPS
        variable = bool(np.any(np.abs(intervals - median) > VFR_TOLERANCE * step))
    else:
        step, variable = 1.0 / FPS, False
    return Probe(
        width=width,
        height=height,
        start_s=times[0],
        frame_count=len(times),
        duration_s=times[-1] - times[0] + step,
        native_fps=1.0 / step,
        variable_rate=variable,
        has_audio=has_audio,
    )


def sample_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` RGB frames spread over the video, each found by a seek plus a short decode."""
    frames: list[np.ndarray] = []
    with _open(path) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        for fraction in np.linspace(0.05, 0.95, count):
            target = fraction * duration
            try:
                if stream.time_base is not None:
                    container.seek(int(target / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.time is None or frame.time >= target - 1e-3:
                        frames.append(frame.to_ndarray(format="rgb24"))
                        break
            except av.error.FFmpegError as err:
                raise MediaError("decode_error", f"cannot decode a frame near {target:.2f}s: {err}") from None
    return frames


def decode_frames(path: Path) -> Iterator[tuple[float, av.VideoFrame]]:
    """(time in seconds, frame) for every frame; a damaged packet is an error, never silently skipped."""
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or FPS)
        index = 0
        try:
            for packet in container.demux(stream):
                for frame in stream.decode(packet):
                    yield (frame.time if frame.time is not None else index / rate), frame
                    index += 1
        except av.error.FFmpegError as err:
            raise MediaError("decode_error", f"frame {index} cannot be decoded: {err}") from None


def resample_frames(
    frames: Iterator[tuple[float, av.VideoFrame]], fps: int
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Constant-rate frames on the `fps` grid: each output time takes the nearest source frame.

    Works for any input rate, regular or not, holding only two source frames at a time. Output time 0 is the
    first source frame; the last frame is held until its own interval ends.
    """
    index = 0
    previous: tuple[float, av.VideoFrame] | None = None
    interval = 1.0 / fps
    start = 0.0
    for time, frame in frames:
        if previous is None:
            start = time
        else:
            interval = max(time - previous[0], 1e-6)
            midpoint = (previous[0] + time) / 2 - start
            while index / fps < midpoint:
                yield index, previous[1]
                index += 1
        previous = (time, frame)
    if previous is not None:
        end = previous[0] - start + interval
        while index / fps < end - 1e-6:
            yield index, previous[1]
            index += 1


def decode_audio_track(path: Path, rate: int) -> tuple[np.ndarray, float]:
    """The first audio stream as mono float32 at `rate`, and the time of its first sample in seconds."""
    chunks: list[np.ndarray] = []
    start: float | None = None
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError("no_audio", "no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                if start is None:
                    start = float(frame.time or 0.0)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as err:
            raise MediaError("decode_error", f"audio cannot be decoded: {err}") from None
    if not chunks:
        raise MediaError("no_audio", "audio track holds no samples")
    return np.concatenate(chunks).astype(np.float32), start or 0.0


def to_square(rgb: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> np.ndarray:
    """Crop `box` (x0, y0, x1, y1) and resize to size×size; with no box, letterbox the whole frame."""
    if box is not None:
        x0, y0, x1, y1 = (round(v) for v in box)
        crop = rgb[max(y0, 0) : y1, max(x0, 0) : x1]
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas
