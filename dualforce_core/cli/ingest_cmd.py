"""`dualforce ingest`: a folder of raw videos → the `clips` table, bad files → the `rejects` table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dualforce_core import paths
from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.weights.registry import WeightsRegistry

DESCRIPTION = """\
Cut every video under --src into training clips and store them in the Lance table `clips`
($DUALFORCE_HOME/lance/clips.lance), one row per clip: square frames at data.size pixels, 25 fps,
data.clip_frames frames every data.clip_stride frames, with 16 kHz mono audio.

Files that cannot be used (corrupt, truncated, no audio, too short, too large, not a video, ...)
are not fatal: each becomes one row of the `rejects` table with a reason, and the run goes on.
Running again over the same folder adds nothing; adding a file adds only its clips.

Work is committed in batches (every data.commit_every files, default 32, or data.write_batch_mb
of clips): a run that is killed loses at most the batch it was filling, and running the same
command again skips every committed file and adds nothing twice.

Useful settings (as KEY=VALUE overrides or in a --config YAML under `data:`):
  data.size=256            square output size (multiple of 16)
  data.crop_mode=center    center | none (letterbox whole frame) | detector (face crop, needs
                           data.detector_path = YuNet .onnx) | haar (OpenCV Haar cascade; OpenCV 5 lacks it)
                           | track (face-track curation: shots, one person per clip, LivePortrait-aligned
                           crops, rejects of frame ranges with reasons; settings data.curation.*,
                           docs/curation.md)
  data.clip_frames=49      frames per clip, 1 (mod 4)
  data.clip_stride=48      frames between clip starts
  data.vfr_policy=resample resample | reject variable-frame-rate sources
  data.max_resolution=4096 reject sources whose longest side is larger
  data.commit_every=32     source files per Lance commit
  data.workers=1           processes that decode, crop and encode (same as --workers)

With data.crop_mode=track, a SyncNet filter (LatentSync's) scores each curated clip: clips with
Sync-C below data.curation.sync.min_confidence (3) or |audio-video offset| above
data.curation.sync.max_offset (6 frames) become `rejects` rows (low_sync, av_offset); the others
get their audio shifted by the measured offset. It needs the real syncnet_v2.model at
weights.paths.syncnet (see `dualforce weights list`); without it, or with a random stand-in, the
filter is skipped with a warning. data.curation.sync.enabled=false turns it off.

example:
  dualforce ingest --dataset demo --src ~/videos/demo --workers 4 data.size=128
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="cut a folder of raw videos into training clips (Lance table `clips`), quarantining bad files",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="dataset name stored with every row, e.g. demo")
    parser.add_argument("--src", required=True, type=Path, help="folder searched recursively for videos")
    parser.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="decode, crop and re-encode sources in N spawned processes (data.workers; default 1); "
        "the clips are the same as with one",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-file progress lines")
    parser.add_argument("--verbose", action="store_true", help="log internal errors with their tracebacks")
    add_config_args(parser)
    parser.set_defaults(func=_ingest)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _ingest(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    config = config_from_args(args)
    if args.workers is not None:
        config.data.workers = args.workers
    weights = WeightsRegistry.from_config(config.weights)  # SyncNet for crop_mode=track's sync filter
    report = ingest_dataset(args.dataset, args.src, config.data, progress=not args.quiet, weights=weights)
    print(report.summary())
    print(f"tables under {paths.lance_dir()}")
    return 0
