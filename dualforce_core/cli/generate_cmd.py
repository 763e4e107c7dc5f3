"""`dualforce generate`: portrait + speech → talking-head mp4, streamed chunk by chunk."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.errors import UserError
from dualforce_core.inference.frontend import load_portrait, load_speech, portrait_settings
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.inference.writer import Mp4Writer
from dualforce_core.models import DualForceModel
from dualforce_core.models.block import GATE_ROWS, DiTBlock
from dualforce_core.preprocessing import Preprocessing
from dualforce_core.timeline import FPS, SAMPLE_RATE, video_frames_for_samples
from dualforce_core.weights import WeightsRegistry

FEED_SECONDS = 0.5  # audio is fed to the generator in pieces this long, as a live source would


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="animate a portrait with a speech track (streaming sampler + streaming VAE decode)",
        description="Generate a 25 fps talking-head mp4 from one portrait image and a speech file. The model "
        "comes from a saved checkpoint (--checkpoint) or is a RANDOM model of a preset (--preset, for smoke "
        "tests). VAE, HuBERT and LivePortrait weights come from the weights registry (weights.root).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="DIR", help="a saved model (config.json + model.safetensors)")
    source.add_argument(
        "--preset", metavar="NAME", help="a randomly initialised model of this preset (tiny, small)"
    )
    parser.add_argument(
        "--lora",
        metavar="DIR",
        type=Path,
        help="a LoRA adapter trained on --checkpoint (RUN_DIR/lora of `dualforce train`), merged in",
    )
    parser.add_argument(
        "--lora-scale",
        metavar="S",
        type=float,
        help="strength of the --lora update (default 1: as trained; 0: the base model exactly)",
    )
    parser.add_argument("--image", required=True, type=Path, help="reference portrait (.png/.jpg)")
    parser.add_argument("--audio", required=True, type=Path, help="speech (.wav/.mp3/.flac/.mp4/.m4a)")
    parser.add_argument("--out", required=True, type=Path, help="output .mp4")
    parser.add_argument("--steps", type=int, help="denoising steps per chunk (inference.steps)")
    parser.add_argument("--seed", type=int, help="sampling seed (inference.seed)")
    parser.add_argument(
        "--no-kv-cache", action="store_true", help="reference path: recompute context every pass"
    )
    parser.add_argument(
        "--save-latents", metavar="FILE", type=Path, help="also save latents + structure tokens"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(parser)
    parser.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    for key in ("steps", "seed"):
        if getattr(args, key) is not None:
            args.overrides.append(f"inference.{key}={getattr(args, key)}")
    config = config_from_args(args)
    inf = config.inference
    if args.out.suffix.lower() != ".mp4":
        raise UserError(f"--out must be an .mp4 file, got {args.out}")
    if args.lora is None and args.lora_scale is not None:
        raise UserError("--lora-scale scales a LoRA adapter: give the adapter with --lora DIR")
    if args.lora is not None and args.preset:
        raise UserError("--lora needs the base it was trained on: use --checkpoint DIR, not --preset")
    warnings = []
    record = None
    if args.preset:
        torch.manual_seed(inf.seed)
        model = DualForceModel.from_preset(args.preset)
        warnings.append(f"the model is a RANDOMLY INITIALISED '{args.preset}' preset (--preset)")
    else:
        record = Preprocessing.load(args.checkpoint)  # before the weights: a clear error first
        model = DualForceModel.from_pretrained(args.checkpoint)
        if is_untrained(model):
            warnings.append(
                f"the checkpoint {args.checkpoint} has never been trained (all AdaLN gates are zero)"
            )
    if args.lora is not None:
        from dualforce_core.lora.merge import merge_adapter  # peft loads only when an adapter is used

        scale = 1.0 if args.lora_scale is None else args.lora_scale
        # Merged into plain weights before wrapping: the streaming model sees no adapter layers.
        model = merge_adapter(model, args.lora, scale=scale)
        print(f"note: LoRA adapter {args.lora} merged at scale {scale:g}", file=sys.stderr)
    size, data = portrait_settings(config, record)
    portrait = load_portrait(args.image, size, data)
    speech = load_speech(args.audio, inf.max_audio_s)
    registry = WeightsRegistry.from_config(config.weights)
    stand_ins = [n for n in ("wan_vae", "hubert", "liveportrait_motion") if registry.is_stand_in(n)]
    if stand_ins:
        warnings.append(
            f"stand-in weights for {', '.join(stand_ins)} (random or fitted, not the real networks)"
        )
    generator = StreamingGenerator.from_config(
        config, model.eval(), no_kv_cache=args.no_kv_cache, preprocessing=record
    )
    for line in warnings:
        print(f"WARNING: {line}: the video is noise, not a result.", file=sys.stderr)
    for note in generator.stats.notes:
        print(f"note: {note}", file=sys.stderr)

    total = video_frames_for_samples(len(speech))
    latents, structs = [], []
    with Mp4Writer(args.out, FPS, SAMPLE_RATE) as writer:
        writer.add_audio(speech)
        progress = _Progress(total, enabled=not args.no_progress)
        for chunk in generator.stream(portrait, _pieces(speech)):
            writer.write(chunk.frames)
            latents.append(chunk.latents.float().cpu())
            structs.append(chunk.struct.float().cpu())
            progress.update(chunk.first_frame + len(chunk.frames))
        progress.close()
    if args.save_latents:
        args.save_latents.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {
                "video_latents": torch.cat(latents, dim=2).contiguous(),
                "struct_tokens": torch.cat(structs, 1).contiguous(),
            },
            str(args.save_latents),
        )
    s = generator.stats
    print(f"wrote {args.out}: {s.frames} frames ({s.frames / FPS:.2f} s) at {FPS} fps with the input audio")
    print(
        f"speed: {s.fps:.2f} FPS overall; first chunk after {s.first_chunk_s or 0:.3f} s; model {s.model_s:.2f} s, "
        f"VAE decode {s.decode_s:.2f} s, HuBERT {s.audio_s:.2f} s; KV cache {s.cache_bytes / 2**20:.2f} MiB; "
        f"peak memory {s.peak_memory_bytes / 2**20:.0f} MiB"
    )
    for line in warnings:
        print(f"WARNING: {line}.", file=sys.stderr)
    return 0


def is_untrained(model: DualForceModel) -> bool:
    """AdaLN-Zero gates start at exactly zero and any training step moves them: all zero = never trained."""
    tables = [
        b.table for tower in (model.video, model.struct) for b in tower.blocks if isinstance(b, DiTBlock)
    ]
    return all(bool((t[list(GATE_ROWS)] == 0).all()) for t in tables)


def _pieces(speech: np.ndarray) -> Iterator[np.ndarray]:
    step = int(FEED_SECONDS * SAMPLE_RATE)
    for start in range(0, len(speech), step):
        yield speech[start : start + step]


class _Progress:
    """A one-line progress bar on stderr (frames written / frames the audio needs)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled and total > 0

    def update(self, done: int) -> None:
        if self.enabled:
            filled = round(30 * min(done, self.total) / self.total)
            print(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} frames", end="", file=sys.stderr
            )

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)
