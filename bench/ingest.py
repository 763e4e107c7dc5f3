"""Ingestion throughput against the floor set by decoding alone, on the same files.

    python bench/ingest.py --clips 10 --seconds 4 --size 256
    python bench/ingest.py --src ~/videos/demo data.crop_mode=none

The floor is what `ffmpeg -i x -f null -` does: decode every video and audio frame and discard it.
Ingestion adds hashing, probing, resampling to 25 fps, crop/resize, H.264 re-encode of every clip at
data.size, FLAC audio and the Lance writes. Both report source video frames per second, single process.
Without --src the files are synthetic (`dualforce_core.sample_data`), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av

from dualforce_core.config import load_config
from dualforce_core.data.ingest import discover, ingest_dataset
from dualforce_core.sample_data import generate_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", type=Path, help="folder of videos (default: generate synthetic clips)")
    parser.add_argument("--clips", type=int, default=10, help="synthetic clips to generate")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each synthetic clip")
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic source videos")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. data.size=128"
    )
    return parser.parse_args()


def decode_only(files: list[Path]) -> tuple[int, float]:
    """(video frames, seconds) to decode every frame of every stream and throw it away."""
    frames = 0
    start = time.perf_counter()
    for path in files:
        with av.open(str(path)) as container:
            for video in container.streams.video:
                video.thread_type = "AUTO"
            for frame in container.decode(*container.streams.video, *container.streams.audio):
                frames += isinstance(frame, av.VideoFrame)
    return frames, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    config = load_config(None, args.overrides).data
    with tempfile.TemporaryDirectory() as tmp:
        src = args.src
        if src is None:
            src = Path(tmp) / "raw"
            generate_dataset(src, clips=args.clips, seconds=args.seconds, size=args.size)
        files, _ = discover(src, config)
        decode_frames, decode_s = decode_only(files)
        os.environ["DUALFORCE_HOME"] = str(Path(tmp) / "home")
        report = ingest_dataset("bench", src, config, progress=False)
    print(
        f"{len(files)} files, {decode_frames} source video frames; output {config.size}px, crop {config.crop_mode}"
    )
    print(f"decode only : {decode_s:7.2f}s  {decode_frames / decode_s:8.1f} frames/s")
    print(f"ingest      : {report.seconds:7.2f}s  {report.frames_per_s:8.1f} frames/s")
    print(
        f"ingest costs {report.seconds / decode_s:.1f}x a plain decode; {report.clips_written} clips written"
    )
    print(report.summary())


if __name__ == "__main__":
    main()
