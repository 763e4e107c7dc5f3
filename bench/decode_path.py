"""The training storage round trip vs the inference portrait: `python bench/decode_path.py`.

Training features are extracted from clips after `media.encode_video` → `media.decode_video`; the inference
portrait (`generate --image`, `serve`) is the crop itself. For each `data.video_codec` (h264 at a crf, and
lossless) this measures on real photographs (Debian's opencv-doc portraits, aligned by `align_portrait` at
256 px as a `track` checkpoint cuts the portrait) the PSNR and max abs error between the crop and the same
crop after the round trip: a still clip (49 copies; frame 0 is what a training reference frame is) and a
moving clip (slow pan / zoom / roll of the photo, each frame cut by `align_crop` on the ground-truth
landmarks). Bytes per 49-frame clip, encode and decode ms are also measured on real video (`Megamind.avi`,
frames 1–49, one shot, centre crop). Needs opencv-doc, like the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from dualforce_core.curation import corpus
from dualforce_core.curation.align import align_crop
from dualforce_core.curation.config import AlignConfig
from dualforce_core.curation.curate import align_portrait
from dualforce_core.curation.faces import FaceModels
from dualforce_core.data import media
from dualforce_core.data.config import VideoCodec
from dualforce_core.data.crop import center_box

SIZE = 256
FRAMES = 49
PORTRAITS = ("A", "B", "C")
MEGAMIND = corpus.OPENCV_DOC / "examples/data/Megamind.avi"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def moving_crops(renderer: corpus.Renderer, photo: str) -> np.ndarray:
    """49 aligned crops of a photo under a slow pan / zoom / roll (the shape of `corpus.default_shots`)."""
    layer = corpus.Layer(photo, face_px=112, centre=(0.47, 0.5), pan=(30, -6), zoom=1.1, roll=6)
    shot = corpus.Shot("moving", FRAMES, [layer], "clip")
    crops = []
    for index in range(FRAMES):
        frame, faces = renderer.frame(shot, index)
        crops.append(align_crop(frame, np.asarray(faces[0]["landmarks"]), SIZE, AlignConfig())[0])
    return np.stack(crops)


def round_trip(frames: np.ndarray, codec: VideoCodec, crf: int, preset: str, repeats: int) -> dict[str, Any]:
    """Median encode / decode ms over `repeats` runs, bytes, and the decoded frames."""
    media.LOSSLESS_PRESET = preset  # the bench compares presets; ingestion always uses the module's own
    encode_s, decode_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        blob = media.encode_video(frames, 25, crf, preset, codec=codec)
        encode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        decoded = media.decode_video(blob)
        decode_s.append(time.perf_counter() - started)
    assert decoded.shape == frames.shape, (decoded.shape, frames.shape)
    return {
        "bytes": len(blob),
        "encode_ms": 1000 * float(np.median(encode_s)),
        "decode_ms": 1000 * float(np.median(decode_s)),
        "decoded": decoded,
    }


def gap(crops: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """Frame 0 and per-frame mean PSNR, and the largest abs error of any pixel."""
    return {
        "psnr_frame0_db": psnr(crops[0], decoded[0]),
        "psnr_mean_db": float(np.mean([psnr(c, d) for c, d in zip(crops, decoded)])),
        "max_abs_error": int(np.abs(crops.astype(int) - decoded.astype(int)).max()),
    }


def megamind_clip() -> np.ndarray:
    """Frames 1–49 of the trailer (one shot: cuts at 1 and 98), centre square at 256 px."""
    frames = corpus.decode_rgb(MEGAMIND, 1, 1 + FRAMES)
    height, width = frames[0].shape[:2]
    return np.stack([media.to_square(f, center_box(width, height), SIZE) for f in frames])


def run(variants: list[tuple[VideoCodec, int, str]], repeats: int, out: Path | None) -> dict[str, Any]:
    corpus.check_media()
    models = FaceModels("hog", upsample=1)
    renderer = corpus.Renderer(384, 288, models)
    clips: dict[str, np.ndarray] = {"Megamind (real video)": megamind_clip()}
    portraits: dict[str, np.ndarray] = {}
    for photo in PORTRAITS:
        portraits[photo] = align_portrait(corpus.load_image(photo), SIZE, AlignConfig(), models)[0]
        clips[f"photo {photo} moving"] = moving_crops(renderer, photo)
    report: dict[str, Any] = {}
    for codec, crf, preset in variants:
        name = f"{codec} crf {crf} {preset}" if codec == "h264" else f"{codec} {preset}"
        row: dict[str, Any] = {"portrait_still": {}, "clips": {}}
        for photo, crop in portraits.items():
            still = np.repeat(crop[None], FRAMES, axis=0)
            trip = round_trip(still, codec, crf, preset, repeats)
            row["portrait_still"][photo] = gap(still, trip.pop("decoded")) | trip
        for clip_name, frames in clips.items():
            trip = round_trip(frames, codec, crf, preset, repeats)
            row["clips"][clip_name] = gap(frames, trip.pop("decoded")) | trip
        report[name] = row
        for label, entries in (("still portrait", row["portrait_still"]), ("clip", row["clips"])):
            for key, entry in entries.items():
                print(
                    f"{name} | {label} {key}: PSNR frame 0 {entry['psnr_frame0_db']:.2f} dB, mean "
                    f"{entry['psnr_mean_db']:.2f} dB, max abs error {entry['max_abs_error']}; "
                    f"{entry['bytes'] / 1024:.0f} KiB, encode {entry['encode_ms']:.0f} ms, decode "
                    f"{entry['decode_ms']:.0f} ms"
                )
    if out is not None:
        out.write_text(json.dumps(report, indent=1))  # inf PSNR is written as Infinity
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crf", type=int, nargs="+", default=[18], help="h264 crf values to measure")
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["veryfast"],
        help="libx264 presets to measure (h264: data.video_preset; lossless: media.LOSSLESS_PRESET)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="encode/decode runs per clip (median time)")
    parser.add_argument("--out", type=Path, help="write the measurements as JSON here")
    args = parser.parse_args()
    variants: list[tuple[VideoCodec, int, str]] = [("h264", crf, p) for p in args.presets for crf in args.crf]
    variants += [("lossless", 0, p) for p in dict.fromkeys([*args.presets, media.LOSSLESS_PRESET])]
    run(variants, args.repeats, args.out)


if __name__ == "__main__":
    main()
