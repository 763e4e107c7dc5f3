"""`dualforce weights`: inspect the weights registry, write random stand-ins, fit a VAE stand-in to a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from dualforce_core import paths
from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.errors import UserError
from dualforce_core.weights import COMPONENTS, MissingWeightsError, WeightsRegistry, init_random
from dualforce_core.weights.fit_data import split_clips
from dualforce_core.weights.fit_mouth import fit_mouth_probe
from dualforce_core.weights.fit_vae import VaeFitSettings, fit_vae
from dualforce_core.weights.fitted import FITTED_ROOT, install_fitted
from dualforce_core.weights.registry import mark_fitted

PROBE_STEPS = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="pretrained weights: list them or write random stand-ins")
    sub = parser.add_subparsers(dest="weights_command", required=True)

    init = sub.add_parser(
        "init-random",
        help="write small RANDOM stand-ins of every network in the real formats (tests and the demo only)",
    )
    init.add_argument("--out", help="folder to write (default: $DUALFORCE_WEIGHTS)")
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(func=_init_random)

    fitted = sub.add_parser(
        "install-fitted",
        help="copy the shipped FITTED stand-ins (VAE + mouth probe fitted to the 64-px synthetic faces)",
        description=f"Copies {FITTED_ROOT} over the random stand-ins of a weights folder (written by "
        "init-random) and labels them FITTED in STAND-INS.txt. They carry the synthetic faces only.",
    )
    fitted.add_argument("--out", type=Path, help="weights folder (default: $DUALFORCE_WEIGHTS)")
    fitted.set_defaults(func=_install_fitted)

    fit = sub.add_parser(
        "fit",
        help="fit a small Wan-architecture VAE stand-in to a dataset's frames (a stand-in that carries the face)",
        description="Train a small AutoencoderKLWan on the train identities' clips of an ingested dataset, "
        "report PSNR on the held-out identities, and save it where the registry looks for wan_vae "
        "(labelled a FITTED stand-in in STAND-INS.txt). Pair it with data.struct_extractor=sidecar on the "
        "synthetic dataset so both the latents and the structure carry the face. Re-extract latents after.",
    )
    fit.add_argument("--dataset", required=True, help="an ingested dataset (dualforce ingest)")
    fit.add_argument(
        "--out", type=Path, help="VAE folder to write (default: the registry's wan_vae location)"
    )
    defaults = VaeFitSettings()
    fit.add_argument(
        "--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})"
    )
    fit.add_argument(
        "--minutes",
        type=float,
        default=defaults.max_minutes,
        help="stop after this long (default %(default)s)",
    )
    fit.add_argument(
        "--base-dim", type=int, default=defaults.base_dim, help="VAE width (default %(default)s)"
    )
    fit.add_argument(
        "--window-frames",
        type=int,
        default=defaults.window_frames,
        help="frames per training window, 1 (mod 4); use the clips' length (default %(default)s)",
    )
    fit.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="windows per step (default %(default)s)"
    )
    fit.add_argument(
        "--crop",
        type=int,
        default=defaults.crop,
        help="train on random square crops of this size (0: whole frames)",
    )
    fit.add_argument(
        "--motion-weight",
        type=float,
        default=defaults.motion_weight,
        help="extra loss weight on moving pixels (mouth, eyes), in units of the mean motion (default %(default)s)",
    )
    fit.add_argument(
        "--motion-crops",
        action="store_true",
        help="centre each crop (jittered) where the window moves most, instead of anywhere",
    )
    fit.add_argument(
        "--max-clips", type=int, default=defaults.max_clips, help="train clips read (default %(default)s)"
    )
    fit.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate (default %(default)s)")
    fit.add_argument(
        "--probe-steps",
        type=int,
        default=PROBE_STEPS,
        help="steps of the mouth-opening probe fit (metric mouth-audio r; 0 skips it; default %(default)s)",
    )
    fit.add_argument("--seed", type=int, default=defaults.seed)
    fit.add_argument("--device", default="cpu", help="cpu, cuda, ... (the VAE fit)")
    fit.add_argument("--init", type=Path, help="continue fitting this AutoencoderKLWan directory")
    add_config_args(fit)
    fit.set_defaults(func=_fit)

    status = sub.add_parser("list", help="show where each component is looked for and whether it is there")
    add_config_args(status)
    status.set_defaults(func=_list)


def _init_random(args: argparse.Namespace) -> int:
    out = args.out or str(paths.weights_dir())
    written = init_random(out, seed=args.seed)
    print(f"wrote RANDOM stand-ins to {out}: {', '.join(written) or 'none'}")
    print("these are random networks: nothing they produce is a real result")
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = WeightsRegistry.from_config(config_from_args(args).weights)
    for name in COMPONENTS:
        try:
            registry.path(name)
            state = "random stand-in" if registry.is_stand_in(name) else "present"
        except MissingWeightsError:
            state = "MISSING"
        print(f"{name:20s} {state:16s} {registry.location(name)}")
    return 0


def _install_fitted(args: argparse.Namespace) -> int:
    root = args.out or paths.weights_dir()
    if not (root / "STAND-INS.txt").is_file():
        raise UserError(
            f"{root} has no STAND-INS.txt: run `dualforce weights init-random --out {root}` first"
        )
    for name in install_fitted(root):
        print(f"installed the FITTED stand-in {name} in {root} (synthetic faces only, not a real network)")
    return 0


def _fit(args: argparse.Namespace) -> int:
    registry = WeightsRegistry.from_config(config_from_args(args).weights)
    out = args.out or registry.location("wan_vae")
    if args.out is None and out.exists() and not registry.is_stand_in("wan_vae"):
        raise UserError(
            f"{out} holds a VAE that is not a stand-in (real weights?): give --out DIR to write the fitted one elsewhere"
        )
    settings = VaeFitSettings(
        base_dim=args.base_dim,
        steps=args.steps,
        max_minutes=args.minutes,
        seed=args.seed,
        device=args.device,
        init=args.init,
        window_frames=args.window_frames,
        batch_size=args.batch_size,
        lr=args.lr,
        max_clips=args.max_clips,
        crop=args.crop,
        motion_weight=args.motion_weight,
        motion_crops=args.motion_crops,
    )
    train = [c.frames for c in split_clips(args.dataset, "train", settings.max_clips)]
    heldout = [c.frames for c in split_clips(args.dataset, "test", settings.eval_clips)]
    report = fit_vae(args.dataset, train, heldout, Path(out), settings)
    if args.out is None:
        mark_fitted(registry.root, "wan_vae", f"fitted to dataset {args.dataset!r}")
    print(
        f"wrote a FITTED VAE stand-in to {out}: {report.steps} steps in {report.seconds:.0f} s, held-out PSNR "
        f"{report.heldout_psnr_db:.2f} dB ({report.heldout_clips} clips of unseen identities), train "
        f"{report.train_psnr_db:.2f} dB"
    )
    if args.probe_steps > 0:
        probe_path = (
            registry.location("mouth_probe")
            if args.out is None
            else Path(out).parent / "mouth_probe.safetensors"
        )
        reader = fit_mouth_probe(args.dataset, probe_path, args.probe_steps, seed=args.seed)
        if args.out is None:
            mark_fitted(registry.root, "mouth_probe", f"fitted to dataset {args.dataset!r}")
        print(
            f"wrote the mouth-opening probe to {probe_path}: r = {reader.heldout_r:.3f} against the true jaw "
            "opening on held-out identities"
        )
    print(f"re-extract the latents with it: dualforce extract latents --dataset {args.dataset}")
    return 0
