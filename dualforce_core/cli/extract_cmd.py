"""`dualforce extract`: run one feature extractor over a dataset's clips (resumable, batched)."""

from __future__ import annotations

import argparse

from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.flame import extract_flame_params
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.struct import extract_struct_features

KINDS = {
    "audio": "HuBERT hidden states → audio_features (weights: hubert)",
    "struct": "LivePortrait motion + canonical keypoints → struct_features, and stats/<dataset>.json",
    "flame": "FLAME parameters from data.flame_extractor (sidecar|onnx|torchscript|none) → flame_params",
    "latents": "Wan-VAE normalised latents + reference latent → video_latents (weights: wan_vae)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="extract features of a dataset's clips into Lance (skips clips already done)",
        description="Reads the `clips` table, processes clips not yet extracted by the same network, weights "
        "and settings, and merges the rows into the feature table. Batch size: data.feature_batch_size. "
        "Run `dualforce weights init-random` first to try it with random stand-in networks.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, help_text in KINDS.items():
        sub = kinds.add_parser(kind, help=help_text, description=help_text)
        sub.add_argument("--dataset", required=True, help="dataset name, as ingested into `clips`")
        sub.add_argument(
            "--device",
            default="cpu",
            help="torch device for the network (default: cpu; ONNX regressors run on CPU)",
        )
        sub.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        add_config_args(sub)
        sub.set_defaults(func=_extract)


def _extract(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    progress = not args.no_progress
    if args.kind == "audio":
        report = extract_audio_features(args.dataset, config, args.device, progress)
    elif args.kind == "struct":
        report = extract_struct_features(args.dataset, config, args.device, progress)
    elif args.kind == "latents":
        report = extract_video_latents(args.dataset, config, args.device, progress)
    else:
        flame = extract_flame_params(args.dataset, config, args.device, progress)
        if flame is None:
            return 0
        report = flame
    print(report.summary())
    return 0
