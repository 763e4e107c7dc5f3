"""Training-loader throughput: samples/s from the Lance feature tables vs computing them on the fly.

    python bench/loader.py --clips 6 --seconds 2 data.size=128 data.clip_frames=25
    python bench/loader.py --vae full          # on-the-fly side with the full-size Wan 2.1 VAE architecture

The cached side is `TrainingDataset` (what the trainer reads): rows by position from pinned Lance
versions, tensors decoded from bytes, structure normalised and packed. The on-the-fly side is what the
trainer would do without the cache, per sample: decode the clip's H.264 and FLAC blobs, VAE-encode the
frames and the reference frame, run HuBERT and the LivePortrait motion extractor. Networks are the random
stand-ins of `weights init-random` (tiny HuBERT, tiny VAE unless --vae full, full-size LivePortrait), so
the on-the-fly cost is a lower bound and the speed-up an underestimate with real networks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.config import load_config
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.media import decode_video
from dualforce_core.data.training_dataset import TrainingDataset
from dualforce_core.features.audio import clip_waveform, extract_audio_features, hubert_features, load_hubert
from dualforce_core.features.flame import extract_flame_params
from dualforce_core.features.latents import encode_latents, extract_video_latents, load_vae
from dualforce_core.features.liveportrait import load_motion_extractor
from dualforce_core.features.struct import extract_struct_features, motion_params
from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import WeightsRegistry, init_random

DATASET = "bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=6, help="synthetic source videos to generate")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each source video")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the cached dataset")
    parser.add_argument("--vae", choices=["stand-in", "full"], default="stand-in")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DUALFORCE_HOME"] = str(Path(tmp) / "home")
        weights = Path(tmp) / "weights"
        init_random(weights, ("wan_vae", "hubert", "liveportrait_motion", "flame_regressor"))
        overrides = ["model.preset=tiny", "data.size=128", "data.clip_frames=25", "data.clip_stride=24"]
        config = load_config(None, [f"weights.root={weights}", *overrides, *args.overrides])
        generate_dataset(Path(tmp) / "raw", clips=args.clips, seconds=args.seconds, size=config.data.size)
        ingest_dataset(DATASET, Path(tmp) / "raw", config.data, progress=False)
        for extract in (extract_audio_features, extract_struct_features, extract_video_latents):
            extract(DATASET, config, progress=False)
        extract_flame_params(DATASET, config, progress=False)

        dataset = TrainingDataset(DATASET, config.model)
        start = time.perf_counter()
        for _ in range(args.epochs):
            for index in range(len(dataset)):
                dataset[index]
        cached = args.epochs * len(dataset) / (time.perf_counter() - start)

        registry = WeightsRegistry(weights)
        vae = load_vae(registry.path("wan_vae"))
        if args.vae == "full":
            vae = AutoencoderKLWan()  # default config = the Wan 2.1 architecture, random weights
            vae.requires_grad_(False)
        hubert, normalize = load_hubert(registry.path("hubert"))
        motion = load_motion_extractor(registry.path("liveportrait_motion")).eval()
        rows = read_rows("clips", ["video", "audio", "num_frames", "fps"]).to_pylist()
        start = time.perf_counter()
        with torch.no_grad():
            for row in rows:
                frames = decode_video(row["video"])
                waveform = clip_waveform(row["audio"], row["num_frames"], row["fps"])
                encode_latents(vae, frames[None])
                encode_latents(vae, frames[None, :1])
                hubert_features(hubert, waveform[None], row["num_frames"], normalize)
                motion_params(motion, frames)
        on_the_fly = len(rows) / (time.perf_counter() - start)

        print(
            f"{len(dataset)} clips of {config.data.clip_frames} frames at {config.data.size}px, "
            f"{torch.get_num_threads()} threads; RANDOM STAND-IN networks (VAE: {args.vae})"
        )
        print("| path | samples/s |")
        print("|---|---|")
        print(f"| Lance cache (`TrainingDataset`) | {cached:.1f} |")
        print(f"| decode mp4 + encode on the fly | {on_the_fly:.3f} |")
        print(f"speed-up: {cached / on_the_fly:.0f}x")


if __name__ == "__main__":
    main()
