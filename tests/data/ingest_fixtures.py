"""Small real media files for ingestion tests, written with PyAV: good ones and each kind of bad one."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dualforce_core.sample_data import generate_dataset


def drawn_face(width: int, height: int, centre: tuple[int, int], scale: float) -> np.ndarray:
    """A shaded cartoon face (oval, eyes, brows, nose, mouth) that OpenCV's frontal Haar cascade detects."""
    gray = np.full((height, width), 90, np.uint8)
    cx, cy = centre

    def p(dx: float, dy: float) -> tuple[int, int]:
        return (round(cx + dx * scale), round(cy + dy * scale))

    def s(v: float) -> int:
        return max(1, round(v * scale))

    cv2.ellipse(gray, p(0, 5), (s(62), s(80)), 0, 0, 360, 200, -1)
    for dx in (-25, 25):
        cv2.ellipse(gray, p(dx, -12), (s(13), s(7)), 0, 0, 360, 40, -1)
        cv2.line(gray, p(dx - 15, -28), p(dx + 15, -28), 50, s(4))
    cv2.line(gray, p(0, -8), p(0, 20), 150, s(4))
    cv2.ellipse(gray, p(0, 45), (s(22), s(7)), 0, 0, 360, 60, -1)
    blurred = np.asarray(cv2.GaussianBlur(gray, (5, 5), 0), np.uint8)
    return np.ascontiguousarray(np.repeat(blurred[..., None], 3, axis=-1))


def frame_at(
    index: int,
    width: int,
    height: int,
    bright_box: tuple[int, int, int, int] | None = None,
    face_at: tuple[int, int] | None = None,
) -> np.ndarray:
    """A moving gradient (so H.264 has real content); with `bright_box` (x0, y0, x1, y1), a black frame
    holding one white rectangle instead (what the stand-in detector calls a face); with `face_at`, a drawn
    face centred there."""
    if face_at is not None:
        return drawn_face(width, height, face_at, scale=min(width, height) / 300)
    if bright_box is not None:
        rgb = np.zeros((height, width, 3), np.uint8)
        x0, y0, x1, y1 = bright_box
        rgb[y0:y1, x0:x1] = 255
        return rgb
    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx + yy + 4 * index) % 256).astype(np.uint8)
    return np.ascontiguousarray(np.stack([base, np.roll(base, index, axis=1), 255 - base], axis=-1))


def write_video(
    path: Path,
    frames: int,
    width: int = 96,
    height: int = 64,
    fps: int = 25,
    audio: bool = True,
    video: bool = True,
    audio_rate: int = 22050,
    frame_times: list[float] | None = None,
    bright_box: tuple[int, int, int, int] | None = None,
    face_at: tuple[int, int] | None = None,
) -> Path:
    """H.264 (+ AAC) mp4. `frame_times` (seconds) gives a variable-rate stream on a 1 ms clock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        vstream = None
        if video:
            vstream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            if frame_times is not None:
                vstream.codec_context.time_base = Fraction(1, 1000)
        astream = container.add_stream("aac", rate=audio_rate, layout="mono") if audio else None
        if vstream is not None:
            for index in range(frames):
                frame = av.VideoFrame.from_ndarray(
                    frame_at(index, width, height, bright_box, face_at), format="rgb24"
                )
                if frame_times is None:
                    frame.pts, frame.time_base = index, Fraction(1, fps)
                else:
                    frame.pts, frame.time_base = round(frame_times[index] * 1000), Fraction(1, 1000)
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode())
        if astream is not None:
            seconds = frame_times[-1] + 1 / fps if frame_times else frames / fps
            total = int(seconds * audio_rate)
            t = np.arange(total) / audio_rate
            samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
            chunk = 1024
            for start in range(0, total, chunk):
                piece = samples[start : start + chunk][None, :]
                aframe = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                aframe.sample_rate, aframe.pts = audio_rate, start
                aframe.time_base = Fraction(1, audio_rate)
                container.mux(astream.encode(aframe))
            container.mux(astream.encode())
    return path


def write_corrupted_packets(good: Path, out: Path, every: int = 3) -> Path:
    """A remux of `good` (audio kept) in which every `every`th video packet after the first few is random bytes."""
    rng = np.random.default_rng(0)
    with av.open(str(good)) as source, av.open(str(out), "w", format="mp4") as target:
        vin, ain = source.streams.video[0], source.streams.audio[0]
        outputs = {
            vin.index: target.add_stream_from_template(vin),
            ain.index: target.add_stream_from_template(ain),
        }
        video_packets = 0
        for packet in source.demux(vin, ain):
            if packet.size == 0:
                continue
            if packet.stream.index == vin.index:
                video_packets += 1
                if video_packets > 3 and video_packets % every == 0:
                    junk = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                    junk.pts, junk.dts, junk.time_base = packet.pts, packet.dts, packet.time_base
                    junk.stream = outputs[vin.index]
                    target.mux(junk)
                    continue
            packet.stream = outputs[packet.stream.index]
            target.mux(packet)
    return out


def truncate(good: Path, out: Path, fraction: float = 0.5) -> Path:
    data = good.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def random_bytes(out: Path, size: int = 20_000) -> Path:
    out.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    return out


def broken_symlink(out: Path) -> Path:
    os.symlink(out.parent / "does-not-exist.mp4", out)
    return out


def write_bright_region_yunet(out: Path) -> Path:
    """A stand-in ONNX with YuNet's inputs and outputs whose "face" score is a cell's brightness (0..1).

    Not a face detector: it lets tests drive the real `cv2.FaceDetectorYN` loading and decoding path with
    a known answer (bright square = face, black frame = no face), as the random weight stand-ins do.
    """
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["input"], ["gray"], axes=[1], keepdims=1)]
    outputs = []
    for stride in (8, 16, 32):
        s = str(stride)
        nodes += [
            helper.make_node(
                "AveragePool", ["gray"], [f"pool{s}"], kernel_shape=[stride, stride], strides=[stride, stride]
            ),
            helper.make_node("Mul", [f"pool{s}", "inv255"], [f"score{s}"]),
            helper.make_node("Reshape", [f"score{s}", "flat"], [f"cls_{s}"]),
            helper.make_node("Identity", [f"cls_{s}"], [f"obj_{s}"]),
            helper.make_node("Mul", [f"cls_{s}", "zero"], [f"z{s}"]),
            helper.make_node("Add", [f"z{s}", "half"], [f"h{s}"]),
            helper.make_node("Concat", [f"h{s}", f"h{s}", f"z{s}", f"z{s}"], [f"bbox_{s}"], axis=2),
            helper.make_node("Concat", [f"z{s}"] * 10, [f"kps_{s}"], axis=2),
        ]
    for kind, width in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
        outputs += [
            helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, [1, None, width])
            for s in ("8", "16", "32")
        ]
    constants = [
        helper.make_tensor("inv255", TensorProto.FLOAT, [], [1 / 255]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("flat", TensorProto.INT64, [3], [1, -1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "bright_region_yunet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, None, None])],
        outputs,
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def write_batch_corpus(src: Path, good: int, seconds: float = 1.2) -> list[Path]:
    """`good` synthetic talking-face mp4s (`dualforce_core.sample_data`, 64 px) between two bad files, one
    that sorts first (random bytes) and one that sorts last (no audio), so every batch layout mixes clips
    and rejects. Returns the good files."""
    src.mkdir(parents=True, exist_ok=True)
    random_bytes(src / "a_random.mp4")
    generated = generate_dataset(src, clips=good, seconds=seconds, size=64)
    write_video(src / "zz_noaudio.mp4", 30, audio=False)
    return generated
