"""Streaming generation speed: first-chunk latency and sustained FPS, model time vs VAE decode time.

    python bench/stream.py --preset tiny --resolution 64 --header
    python bench/stream.py --preset small --resolution 128 --seconds 2 --vae tiny
    python bench/stream.py --preset base --resolution 512 --device cuda --dtype bf16 --steps 4 --seconds 10

Drives the same `ChunkedSampler` + `StreamingVaeDecoder` that `dualforce generate` streams through, with
random weights (speed does not depend on values) and random HuBERT-shaped audio tokens (HuBERT is not
timed: on a live stream it runs on its own windows ahead of the model). `--vae full` is a random VAE of
the real Wan 2.1 architecture; `--vae tiny` the 8-channel test stand-in (decode time then means
little); a directory loads a real `AutoencoderKLWan`. One short warm-up stream runs first. First-chunk
latency = reference sink + first chunk's denoising and context pass + decoding both. Sustained FPS =
video frames of the later chunks / their time.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.errors import UserError
from dualforce_core.inference.config import InferenceConfig
from dualforce_core.inference.sampler import AudioTrack, ChunkedSampler
from dualforce_core.inference.vae_stream import StreamingVaeDecoder, to_uint8_frames
from dualforce_core.models import DualForceModel
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.timeline import (
    AUDIO_TOKENS_PER_FRAME,
    FPS,
    SPATIAL_STRIDE,
    TEMPORAL_STRIDE,
    latent_frames_covering,
    video_frames_of,
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
HEADER = (
    "| preset | res | steps | mode | backend | device | dtype | VAE | chunk (frames) | first chunk (s) "
    "| sustained FPS | model FPS | decode FPS | model ms/chunk | decode ms/chunk | KV cache (MiB) | peak mem (GiB) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny", help="configs/model/<preset>.yaml: tiny, small, base")
    parser.add_argument(
        "--resolution", type=int, default=64, help="square output size in pixels (multiple of 16)"
    )
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per chunk")
    parser.add_argument("--backend", default="sdpa", choices=["sdpa", "flex", "flash"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the (random) speech")
    parser.add_argument(
        "--vae", default="full", help="full (random Wan 2.1 VAE), tiny (stand-in) or a directory"
    )
    parser.add_argument("--pipelined", action="store_true", help="pipelined sampler (lag 1)")
    parser.add_argument("--cache-frames", type=int, default=12)
    parser.add_argument("--no-kv-cache", action="store_true", help="the reference path (context recomputed)")
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    parser.add_argument("--header", action="store_true", help="print the markdown table header first")
    return parser.parse_args(argv)


def build_vae(choice: str, device: torch.device, dtype: torch.dtype) -> AutoencoderKLWan:
    if choice == "full":
        vae = AutoencoderKLWan()
    elif choice == "tiny":
        vae = AutoencoderKLWan(base_dim=8, z_dim=16)
    elif Path(choice).is_dir():
        vae = AutoencoderKLWan.from_pretrained(choice)
    else:
        raise UserError(f"--vae must be full, tiny or a directory, got {choice!r}")
    vae = vae.to(device)
    return (vae if dtype == torch.float32 else vae.to(dtype)).eval()


def stream_once(
    model: DualForceModel,
    vae: AutoencoderKLWan,
    inference: InferenceConfig,
    latent_hw: int,
    seconds: float,
    sync: Callable[[], None],
    no_kv_cache: bool,
) -> dict[str, float]:
    c = model.config
    frames = round(seconds * FPS)
    latent_frames = latent_frames_covering(frames)
    chunks = max(1, -(-(latent_frames - 1) // c.chunk_frames))
    g = torch.Generator().manual_seed(0)
    audio = AudioTrack(
        torch.randn(AUDIO_TOKENS_PER_FRAME * frames, c.audio_layers, c.audio_dim, generator=g), ended=True
    )
    ref_v = torch.randn(1, c.video_in_channels, 1, latent_hw, latent_hw, generator=g)
    ref_s = torch.randn(1, 1, c.struct_tokens_per_frame, model.projector.token_dim, generator=g)
    sampler = ChunkedSampler(model, inference, DiffusionConfig(), no_kv_cache=no_kv_cache)
    sampler.total_chunks = chunks
    decoder = StreamingVaeDecoder(vae)
    timings = {"model": 0.0, "decode": 0.0, "first": 0.0, "later_frames": 0.0, "later_s": 0.0}
    t_start = time.perf_counter()
    for index in range(chunks + 1):
        t0 = time.perf_counter()
        if index == 0:
            sampler.start(ref_v, ref_s, audio)
            latents = ref_v
        else:
            latents = sampler.next_chunk(audio).video
        sync()
        t1 = time.perf_counter()
        video = to_uint8_frames(decoder.decode(latents))
        sync()
        t2 = time.perf_counter()
        timings["model"] += t1 - t0
        timings["decode"] += t2 - t1
        if index == 1:
            timings["first"] = t2 - t_start
        elif index > 1:
            timings["later_frames"] += video.shape[0]
            timings["later_s"] += t2 - t0
    timings["chunks"] = chunks
    timings["cache_mib"] = sampler.cache.allocated_bytes() / 2**20
    return timings


def run(args: argparse.Namespace) -> str:
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resolution % 16:
        raise UserError(f"--resolution must be a multiple of 16, got {args.resolution}")
    torch.manual_seed(0)
    model = DualForceModel.from_preset(args.preset, device=device, dtype=dtype)
    model.eval()
    vae = build_vae(args.vae, device, dtype)
    inference = InferenceConfig(
        steps=args.steps,
        cache_frames=args.cache_frames,
        pipelined=args.pipelined,
        pipeline_lag=1,
        attention_backend=args.backend,
    )
    model.set_attention_backend(inference.attention_backend)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    latent_hw = args.resolution // SPATIAL_STRIDE
    with torch.no_grad():
        stream_once(model, vae, inference, latent_hw, 0.4, sync, args.no_kv_cache)  # warm-up: one chunk
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t = stream_once(model, vae, inference, latent_hw, args.seconds, sync, args.no_kv_cache)
    chunk_frames = TEMPORAL_STRIDE * model.config.chunk_frames
    per_chunk = t["chunks"] + 1
    model_ms, decode_ms = 1000 * t["model"] / per_chunk, 1000 * t["decode"] / per_chunk
    video_frames = video_frames_of(1 + model.config.chunk_frames * int(t["chunks"]))
    sustained = t["later_frames"] / t["later_s"] if t["later_s"] else float("nan")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    mode = ("pipelined" if args.pipelined else "sequential") + (", no cache" if args.no_kv_cache else "")
    return (
        f"| {args.preset} | {args.resolution} | {args.steps} | {mode} | {args.backend} | {device} | {args.dtype} "
        f"| {args.vae} | {chunk_frames} | {t['first']:.3f} | {sustained:.1f} | {video_frames / t['model']:.1f} "
        f"| {video_frames / t['decode']:.1f} | {model_ms:.1f} | {decode_ms:.1f} | {t['cache_mib']:.2f} | {peak:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        row = run(args)
    except UserError as err:
        print(f"bench/stream.py: error: {err}", file=sys.stderr)
        return 2
    if args.header:
        print(HEADER)
    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
