"""Ingestion throughput against the floor set by decoding alone, on the same files, with 1 and N workers.

    python bench/ingest.py --clips 10 --seconds 4 --size 256                 # 1 and 2 workers
    python bench/ingest.py --src ~/videos/demo --workers 1 4 data.crop_mode=none

The floor is what `ffmpeg -i x -f null -` does: decode every video and audio frame and discard it (PyAV,
one process, FFmpeg's own frame threads). Ingestion adds hashing, probing, resampling to 25 fps, crop/resize,
H.264 re-encode of every clip at data.size, FLAC audio and the batched Lance commits; with `--workers N` the
per-source work runs in N spawned processes (their start-up, ~1-3 s, is inside the measured time). Every
ingest run starts from an empty data root. All rates are source video frames per second; "cores busy"
is the CPU time of the run (this process and its workers) over its wall time.
Without --src the files are synthetic (`dualforce_core.sample_data`), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import av

from dualforce_core.data.ingest import IngestReport, discover, ingest_dataset
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
        "--workers", type=int, nargs="+", default=[1, 2], help="ingest once per worker count (default: 1 2)"
    )
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


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (the ingest workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    # Imported here, not at the top: spawned workers re-import this script, and the config tree pulls in torch.
    from dualforce_core.config import load_config

    args = parse_args()
    config = load_config(None, args.overrides).data
    reports: dict[int, IngestReport] = {}
    busy: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = args.src
        if src is None:
            src = Path(tmp) / "raw"
            generate_dataset(src, clips=args.clips, seconds=args.seconds, size=args.size)
        files, _ = discover(src, config)
        before = cpu_seconds()
        decode_frames, decode_s = decode_only(files)
        decode_busy = (cpu_seconds() - before) / decode_s
        for workers in args.workers:
            os.environ["DUALFORCE_HOME"] = str(Path(tmp) / f"home-{workers}")
            run_config = config.model_copy(update={"workers": workers})
            before = cpu_seconds()
            reports[workers] = ingest_dataset("bench", src, run_config, progress=False)
            busy[workers] = (cpu_seconds() - before) / reports[workers].seconds
    decode_rate = decode_frames / decode_s
    print(
        f"{len(files)} files, {decode_frames} source video frames; output {config.size}px, "
        f"crop {config.crop_mode}, codec {config.video_codec} (h264 preset {config.video_preset}), commit every {config.commit_every} files; "
        f"{os.cpu_count()} CPUs"
    )
    header = f"{'':22} {'seconds':>8} {'frames/s':>9} {'vs decode':>12} {'cores busy':>10}"
    print(f"{header} {'batches':>8} {'commit s':>9}")
    print(f"{'decode only (PyAV)':22} {decode_s:8.2f} {decode_rate:9.1f} {'1.0x':>12} {decode_busy:10.2f}")
    for workers, report in reports.items():
        label = f"ingest, {workers} worker{'s' if workers != 1 else ''}"
        slower = decode_rate / report.frames_per_s if report.frames_per_s else float("inf")
        print(
            f"{label:22} {report.seconds:8.2f} {report.frames_per_s:9.1f} {f'{slower:.1f}x slower':>12} "
            f"{busy[workers]:10.2f} {report.batches_committed:8d} {report.commit_seconds:9.2f}"
        )
    if 1 in reports and len(reports) > 1:
        for workers, report in reports.items():
            if workers != 1 and reports[1].seconds:
                print(f"{workers} workers: {reports[1].seconds / report.seconds:.2f}x the 1-worker rate")
        clips = {report.clips_written for report in reports.values()}
        print(f"clips written per run: {sorted(clips)}")


if __name__ == "__main__":
    main()
