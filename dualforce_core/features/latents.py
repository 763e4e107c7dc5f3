"""Wan-VAE latents → the `video_latents` table: normalised `(mode(z) - mean) / std`, [16, T', H/8, W/8].

T' = 1 + (T - 1) / 4: the causal VAE encodes frame 0 alone and then groups of 4, so clips must have
T ≡ 1 (mod 4) frames (ingestion guarantees it; anything else is refused rather than silently cut).
Also stored: the reference latent, the clip's first frame encoded on its own, [16, 1, h, w] — the
identity frame the model conditions on. Both in `DataConfig.latent_dtype` (bf16 or fp16) bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.config import DualForceConfig
from dualforce_core.data.media import decode_video
from dualforce_core.data.tables import VIDEO_LATENTS
from dualforce_core.data.tensor_codec import encode_tensor
from dualforce_core.features.stage import ExtractReport, run_extractor
from dualforce_core.features.vae_layout import Z_DIM, frames_to_video
from dualforce_core.weights import WeightsRegistry


def build_stand_in(target: Path, seed: int) -> None:
    """A tiny random AutoencoderKLWan (base_dim 8: ~0.9M parameters) with the real z_dim and strides,
    and random per-channel `latents_mean` / `latents_std` so normalisation is exercised."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean = rng.normal(0.0, 0.1, Z_DIM).round(4).tolist()
    std = rng.uniform(0.5, 1.5, Z_DIM).round(4).tolist()
    AutoencoderKLWan(base_dim=8, z_dim=Z_DIM, latents_mean=mean, latents_std=std).save_pretrained(target)


def load_vae(model_dir: Path, tiling: bool = False) -> AutoencoderKLWan:
    vae = AutoencoderKLWan.from_pretrained(model_dir).eval()
    if tiling:
        vae.enable_tiling()
    return vae


def _stats(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1, 1, 1, 1)
    mean = torch.tensor(vae.config["latents_mean"], dtype=torch.float32, device=like.device).view(shape)
    std = torch.tensor(vae.config["latents_std"], dtype=torch.float32, device=like.device).view(shape)
    return mean, std


@torch.no_grad()
def encode_latents(vae: AutoencoderKLWan, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames [B, T, H, W, 3] → normalised latents [B, 16, 1 + (T-1)/4, H/8, W/8] float32."""
    param = next(vae.parameters())
    video = frames_to_video(frames).to(param.device, param.dtype)
    z = vae.encode(video).latent_dist.mode().float()
    mean, std = _stats(vae, z)
    return ((z - mean) / std).cpu()


@torch.no_grad()
def decode_latents(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents [B, 16, T', h, w] (any float dtype) → video [B, 3, T, H, W] in [-1, 1], float32."""
    param = next(vae.parameters())
    z = latents.to(param.device, torch.float32)
    mean, std = _stats(vae, z)
    video = vae.decode((z * std + mean).to(param.dtype)).sample
    return video.float().clamp(-1.0, 1.0).cpu()


class LatentStage:
    table = VIDEO_LATENTS.name
    clip_columns: tuple[str, ...] = ("video", "num_frames")

    def __init__(self, registry: WeightsRegistry, dtype: str, tiling: bool, device: str = "cpu"):
        self.model_dir = registry.path("wan_vae")
        self.dtype = dtype
        self.tiling = tiling
        self.device = device
        self.extractor_id = f"wan_vae:{registry.fingerprint('wan_vae')[:16]}:{dtype}:tiling={int(tiling)}"
        self.vae: AutoencoderKLWan | None = None

    def load(self) -> None:
        self.vae = load_vae(self.model_dir, self.tiling).to(self.device)  # type: ignore[arg-type]

    def process(self, clips: pa.Table) -> pa.Table:
        assert self.vae is not None, "load() first"
        rows: dict[str, list] = {
            k: [] for k in ("clip_id", "dataset", "latents", "shape", "ref", "ref_shape")
        }
        groups: dict[tuple[int, ...], list[tuple[str, str, np.ndarray]]] = {}
        for clip in clips.to_pylist():
            frames = decode_video(clip["video"])
            groups.setdefault(frames.shape, []).append((clip["clip_id"], clip["dataset"], frames))
        for group in groups.values():
            frames = np.stack([g[2] for g in group])
            latents = encode_latents(self.vae, frames)
            refs = encode_latents(self.vae, frames[:, :1])
            for (clip_id, dataset, _), latent, ref in zip(group, latents, refs):
                blob, shape, _ = encode_tensor(latent, self.dtype)
                ref_blob, ref_shape, _ = encode_tensor(ref, self.dtype)
                rows["clip_id"].append(clip_id)
                rows["dataset"].append(dataset)
                rows["latents"].append(blob)
                rows["shape"].append(shape)
                rows["ref"].append(ref_blob)
                rows["ref_shape"].append(ref_shape)
        n = len(rows["clip_id"])
        return VIDEO_LATENTS.rows(
            {
                "clip_id": rows["clip_id"],
                "dataset": rows["dataset"],
                "extractor_id": [self.extractor_id] * n,
                "latents": rows["latents"],
                "shape": rows["shape"],
                "dtype": [self.dtype] * n,
                "ref_latent": rows["ref"],
                "ref_shape": rows["ref_shape"],
            }
        )


def extract_video_latents(
    dataset: str, config: DualForceConfig, device: str = "cpu", progress: bool = True
) -> ExtractReport:
    """Latents for every clip not yet encoded with these VAE weights, dtype and tiling setting."""
    stage = LatentStage(
        WeightsRegistry.from_config(config.weights), config.data.latent_dtype, config.data.vae_tiling, device
    )
    return run_extractor(stage, dataset, config.data.feature_batch_size, progress)
