"""Does a model trained by this pipeline learn to talk? The learnable synthetic lip-sync benchmark.

    python bench/lipsync.py --home /tmp/lipsync                       # the documented run (~1 h on 2 CPUs)
    python bench/lipsync.py --home /tmp/lipsync --stage measure       # re-measure trained models
    python bench/lipsync.py --home /tmp/ls --clips 24 --steps 40 --eval-clips 4   # a smoke run

Real code paths end to end, on a synthetic dataset with enough identities to generalise:
`sample-data` → ingest → features (HuBERT stand-in, the `sidecar` structure extractor, latents from the
VAE in the weights folder: the shipped stand-in fitted to these faces, or `--vae random`) → the mouth
probe fitted on the train identities → two trainings of the same model, one with audio and one with
`train.audio_dropout=1.0` (the audio-ablated control) → on held-out identities:
1. the conditional loss gap per modality (own vs another clip's audio, same σ and noise), 95 % interval;
2. the generated mouth against the driving audio's envelope, read two ways: from the decoded pixels by
   the mouth probe (meaningful only with a VAE that carries the face), and from the generated structure
   stream's jaw: true audio; swapped audio against the driving clip and against the portrait's own
   clip; the ablated model with true audio.
Writes `<home>/lipsync.json` and prints a markdown table for docs/benchmarks.md. Targets (issue #13):
true r ≥ 0.6, swapped r ≥ 0.5 against the driving audio, ablated r ≤ 0.15, loss gap > 5 % with its
interval above 0. The stand-ins are synthetic-data networks: these numbers say the pipeline learns
audio → mouth on cartoon faces, nothing about real video.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", type=Path, required=True, help="data root for this benchmark (DUALFORCE_HOME)"
    )
    parser.add_argument("--stage", choices=["all", "data", "train", "measure"], default="all")
    parser.add_argument("--clips", type=int, default=192, help="synthetic videos (default %(default)s)")
    parser.add_argument("--identities", type=int, default=48, help="distinct people (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each video")
    parser.add_argument("--preset", default="small", help="model preset (default %(default)s)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval-clips", type=int, default=24, help="held-out clips generated and scored")
    parser.add_argument("--draws", type=int, default=8, help="σ/noise draws per clip for the loss gap")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--probe-steps", type=int, default=1000, help="mouth-probe fit steps")
    parser.add_argument(
        "--vae",
        choices=["fitted", "random"],
        default="fitted",
        help="the shipped VAE fitted to these faces (dualforce weights install-fitted), or a random one",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace, ablated: bool) -> list[str]:
    """The benchmark's configuration: the preset sized for the HuBERT stand-in, 64 px, sidecar structure."""
    name = "ablated" if ablated else "audio"
    return [
        f"model.preset={args.preset}",
        "model.audio_dim=32",
        "model.audio_layers=3",
        "model.struct_tokens_per_frame=3",
        "train.loss_weights.lipsync=0.5",
        "data.size=64",
        "data.clip_frames=25",
        "data.clip_stride=24",
        "data.video_preset=ultrafast",
        "data.struct_extractor=sidecar",
        f"train.name=lipsync-{name}",
        "train.device=cpu",
        f"train.batch_size={args.batch_size}",
        f"train.max_steps={args.steps}",
        f"train.lr={args.lr}",
        f"train.warmup_steps={min(100, args.steps // 10)}",
        "train.ema_decay=0.995",
        f"train.checkpoint_every={max(args.steps // 2, 1)}",
        "train.keep_last=1",
        "train.log_every=25",
        "train.num_workers=0",
        "train.mlflow=true",
        f"train.seed={args.seed}",
        f"train.audio_dropout={1.0 if ablated else 0.1}",
    ]


def stage(title: str) -> float:
    print(f"\n== {title} ({time.strftime('%H:%M:%S')})", flush=True)
    return time.monotonic()


def prepare_data(args: argparse.Namespace) -> dict[str, Any]:
    from dualforce_core import paths
    from dualforce_core.config import load_config
    from dualforce_core.data.ingest import ingest_dataset
    from dualforce_core.features.audio import extract_audio_features
    from dualforce_core.features.latents import extract_video_latents, load_vae
    from dualforce_core.features.struct import extract_struct_features
    from dualforce_core.sample_data import generate_dataset
    from dualforce_core.weights import WeightsRegistry, init_random
    from dualforce_core.weights.fit_data import split_clips
    from dualforce_core.weights.fit_mouth import fit_mouth_probe
    from dualforce_core.weights.fit_vae import mean_psnr
    from dualforce_core.weights.fitted import install_fitted
    from dualforce_core.weights.registry import mark_fitted

    config = load_config(None, overrides(args, False))
    raw = paths.raw_dir() / "lipsync"
    started = stage(f"data: {args.clips} synthetic videos of {args.identities} identities")
    if not any(raw.glob("videos/*.mp4")):
        generate_dataset(
            raw, clips=args.clips, seed=args.seed, seconds=args.seconds, size=64, identities=args.identities
        )
    weights = paths.weights_dir()
    if not (weights / "STAND-INS.txt").is_file():
        init_random(weights, seed=args.seed)
        if args.vae == "fitted":
            install_fitted(weights)
    print(ingest_dataset("lipsync", raw, config.data, progress=False).summary())
    for extract in (extract_audio_features, extract_struct_features, extract_video_latents):
        report = extract("lipsync", config, progress=False)
        print(report.summary())
    heldout = [c.frames for c in split_clips("lipsync", "test", 16)]
    psnr = mean_psnr(load_vae(weights / "wan_vae"), heldout)
    print(f"VAE in the weights folder: {psnr:.2f} dB PSNR on {len(heldout)} held-out clips")
    probe = WeightsRegistry.from_config(config.weights).location("mouth_probe")
    if not probe.is_file():
        reader = fit_mouth_probe("lipsync", probe, args.probe_steps, seed=args.seed)
        mark_fitted(weights, "mouth_probe", "fitted to dataset 'lipsync'")
        print(f"mouth probe: r = {reader.heldout_r:.3f} against the true jaw on held-out identities")
    return {"vae_heldout_psnr_db": round(psnr, 2), "data_seconds": round(time.monotonic() - started, 1)}


def train_models(args: argparse.Namespace) -> dict[str, Any]:
    from dualforce_core import paths
    from dualforce_core.config import load_config
    from dualforce_core.training.trainer import train

    out: dict[str, Any] = {}
    for ablated in (False, True):
        name = "ablated" if ablated else "audio"
        started = stage(f"train {args.preset} ({name}): {args.steps} steps, batch {args.batch_size}")
        result = train(
            load_config(None, overrides(args, ablated)), "lipsync", paths.runs_dir() / f"lipsync-{name}"
        )
        out[f"train_{name}"] = {
            "seconds": round(time.monotonic() - started, 1),
            "last_loss": result.last_loss,
            "final": str(result.final_dir),
            "mlflow_run_id": result.mlflow_run_id,
        }
        print(f"{name}: last loss {result.last_loss:.4f} in {out[f'train_{name}']['seconds']:.0f} s")
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from dualforce_core import paths
    from dualforce_core.config import load_config
    from dualforce_core.data.split import dataset_clips, select_split
    from dualforce_core.evaluation.lipsync import conditional_loss_gap, mouth_sync
    from dualforce_core.metrics.mouth import MouthReader
    from dualforce_core.models import DualForceModel
    from dualforce_core.weights import WeightsRegistry

    config = load_config(None, overrides(args, False))
    clips = select_split(dataset_clips("lipsync", config.eval), "test", config.eval.test_fraction)
    chosen = clips[: args.eval_clips]
    reader = MouthReader.load(WeightsRegistry.from_config(config.weights).path("mouth_probe"))
    results: dict[str, Any] = {
        "heldout_clips": len(chosen),
        "heldout_identities": len({c.identity for c in chosen}),
        "mouth_probe_heldout_r": reader.heldout_r,
    }
    for name in ("audio", "ablated"):
        checkpoint = paths.runs_dir() / f"lipsync-{name}" / "final"
        started = stage(f"measure {name}: loss gap ({args.draws} draws per clip)")
        model = DualForceModel.from_pretrained(checkpoint)
        gap = conditional_loss_gap(
            model, "lipsync", [c.clip_id for c in chosen], [c.identity for c in chosen], config, args.draws
        )
        results[f"{name}_loss_gap"] = {m: asdict(v) for m, v in gap.items()}
        print(", ".join(f"{m} gap {v}" for m, v in gap.items()))
        stage(f"measure {name}: generate {len(chosen)} held-out clips and read the mouth")
        sync = mouth_sync(checkpoint, chosen, config, reader, swap=name == "audio")
        results[f"{name}_mouth"] = sync.summary()
        results[f"{name}_seconds"] = round(time.monotonic() - started, 1)
        for key, value in sync.summary().items():
            print(
                f"{name} {key}: {value['mean']:+.3f} [{value['low']:+.3f}, {value['high']:+.3f}] (n={value['n']})"
            )
    return results


def table(results: dict[str, Any]) -> str:
    audio, ablated = results["audio_mouth"], results["ablated_mouth"]
    gap, ablated_gap = results["audio_loss_gap"], results["ablated_loss_gap"]

    def r(entry: dict[str, Any] | None) -> str:
        if entry is None:
            return "—"
        return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"

    def g(entry: dict[str, Any]) -> str:
        return f"{100 * entry['mean']:+.1f} % [{100 * entry['low']:+.1f}, {100 * entry['high']:+.1f}]"

    rows = [
        ("loss gap, video (own vs swapped audio)", "> 5 %, interval > 0", g(gap["video"]), "—"),
        ("loss gap, structure", "> 5 %, interval > 0", g(gap["struct"]), "—"),
        ("r, true audio", "≥ 0.6", r(audio.get("true_r")), r(audio.get("structure_true_r"))),
        (
            "r, swapped audio vs the driving audio",
            "≥ 0.5",
            r(audio.get("swapped_r_driving")),
            r(audio.get("structure_swapped_r_driving")),
        ),
        (
            "r, swapped audio vs the portrait's own audio",
            "low",
            r(audio.get("swapped_r_own")),
            r(audio.get("structure_swapped_r_own")),
        ),
        (
            "r, audio-ablated model, true audio",
            "≤ 0.15",
            r(ablated.get("true_r")),
            r(ablated.get("structure_true_r")),
        ),
        ("r, ground-truth video (the probe's ceiling)", "—", r(audio.get("ground_truth_r")), "—"),
        (
            "loss gap of the ablated model, video / structure",
            "≈ 0",
            f"{g(ablated_gap['video'])}",
            g(ablated_gap["struct"]),
        ),
    ]
    lines = [
        "| held-out identities | target | pixels: mouth probe on decoded frames (95 % CI) | structure stream's jaw |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {target} | {pixels} | {structure} |" for name, target, pixels, structure in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DUALFORCE_HOME"] = str(args.home.resolve())
    if args.threads:
        torch.set_num_threads(args.threads)
    from dualforce_core.errors import UserError

    out_path = args.home / "lipsync.json"
    results: dict[str, Any] = json.loads(out_path.read_text()) if out_path.is_file() else {}
    results["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    )
    results["settings"] = {k: str(v) for k, v in vars(args).items()}
    try:
        if args.stage in ("all", "data"):
            results |= prepare_data(args)
        if args.stage in ("all", "train"):
            results |= train_models(args)
        if args.stage in ("all", "measure"):
            results |= measure(args)
    except UserError as err:
        print(f"lipsync: error: {err}", file=sys.stderr)
        return 2
    args.home.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    if "audio_mouth" in results:
        print("\n" + table(results))
    print(f"\nresults: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
