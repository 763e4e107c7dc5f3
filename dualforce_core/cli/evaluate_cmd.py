"""`dualforce evaluate`: held-out clips → generated videos → FID, FVD, Sync-C/D, CSIM, ACD → a report."""

from __future__ import annotations

import argparse
import math

from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.data.split import SPLITS
from dualforce_core.evaluation.evaluate import evaluate
from dualforce_core.evaluation.generation import still_generator

DESCRIPTION = """\
Evaluate a checkpoint on the held-out clips of a dataset. Clips are split by identity (the sidecar
JSON's `identity` for synthetic data, else the source file; see eval.identity), so nobody in the test
split was seen in training. Every test clip is generated from its first frame and its audio, then:

  FID      InceptionV3 pool3 features of all frames, generated vs ground truth      (lower is better)
  FVD      I3D features of 16-frame clips, generated vs ground truth                 (lower is better)
  Sync-C/D SyncNet confidence / distance of lips vs audio, and the best offset   (C higher, D lower)
  CSIM     ArcFace cosine similarity of generated frames to the reference frame      (higher is better)
  ACD      ArcFace embedding distance to the ground-truth frame, frame by frame      (lower is better)

The ground truth is scored too (its Sync is the ceiling on this data). The report goes to
$DUALFORCE_HOME/reports/NAME/ (report.json, report.md, metrics.png, samples/*.mp4 showing
ground truth | generated with audio) and to MLflow (metrics eval/fid, eval/fvd, ...). Reports made
with random stand-in weights (metric networks, VAE, HuBERT, ...) say so at the top.

All weights come from the weights registry (`dualforce weights --help`); nothing is downloaded.
--limit N takes the first N clips by clip id (a hash: a sample across identities).

examples:
  dualforce evaluate --dataset demo --checkpoint .dualforce/runs/demo/RUN/final
  dualforce evaluate --dataset demo --ground-truth-only --split all   # pipeline check: FID = FVD = 0
  dualforce evaluate --dataset demo --baseline still                  # frozen-portrait baseline
  dualforce evaluate --dataset demo --checkpoint DIR eval.test_fraction=0.3 eval.samples=4
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint on held-out identities (FID, FVD, Sync-C/D, CSIM, ACD) and write a report",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="dataset name given to `dualforce ingest`")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="a saved model (config.json + model.safetensors), e.g. a training run's final/ folder",
    )
    source.add_argument(
        "--ground-truth-only",
        action="store_true",
        help="no model: score the ground truth against itself (FID = FVD = 0; checks the pipeline, gives the "
        "real-video Sync and CSIM)",
    )
    source.add_argument(
        "--baseline",
        choices=["still"],
        help="no model: `still` repeats the reference frame (the no-motion floor for Sync)",
    )
    parser.add_argument("--split", choices=SPLITS, help="which clips (default eval.split = test)")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate at most N clips of the split")
    parser.add_argument(
        "--name", help="report folder name under $DUALFORCE_HOME/reports/ (replaced if present)"
    )
    add_config_args(parser)
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = evaluate(
        args.checkpoint,
        args.dataset,
        config,
        split=args.split,
        limit=args.limit,
        name=args.name,
        ground_truth_only=args.ground_truth_only,
        generator=still_generator if args.baseline == "still" else None,
    )
    if result.stand_in_weights:
        print(
            "WARNING: random stand-in network weights were used (see the report); these numbers are meaningless."
        )
    for key, value in result.metrics.items():
        print(f"  {key:16s} {'n/a' if math.isnan(value) else f'{value:.4f}'}")
    print(f"report: {result.report_dir}")
    return 0
