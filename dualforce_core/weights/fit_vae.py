"""Fit a small Wan-architecture VAE (`AutoencoderKLWan`) to a dataset's frames: a stand-in that carries the face.

A randomly initialised VAE erases the face (a probe from its latents to the mouth opening reaches r ≈ 0.05),
so nothing trained on its latents can show whether it learns. This fits the same architecture the real
Wan 2.1 VAE has (causal 3D convolutions, z_dim 16, strides 4×8×8, latent normalisation in its config) to
the training identities' clips, measures PSNR on the held-out identities through the real encode/decode
path, writes per-channel `latents_mean` / `latents_std` from the training latents, and saves it with
`save_pretrained` where the registry looks for `wan_vae`, labelled a FITTED stand-in.

Training windows are 1 + 4k frames (the causal VAE's frame-0-then-groups-of-4 rule), so the temporal
path and the causal cache across chunks are both trained. The posterior mean is the latent (extraction
uses `mode()`); a small latent-noise augmentation keeps the decoder tolerant of a generator's
imperfect latents.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.errors import UserError
from dualforce_core.features.vae_layout import Z_DIM, frames_to_video

FIT_REPORT = "fit_report.json"


@dataclass(frozen=True)
class VaeFitSettings:
    base_dim: int = 12  # fp32 weights of ~5.8 MB: small enough to commit a fit
    num_res_blocks: int = 1
    steps: int = 3000
    max_minutes: float = 45.0
    batch_size: int = 2
    # 1 + 4k frames, as long as the clips: the causal cache drifts on chunks it never trained on (a 9-frame
    # fit read 21-23 dB on frames 1-8 and 12-13 dB by frame 24 of 25-frame clips).
    window_frames: int = 25
    lr: float = 3e-4  # 1e-3 oscillates (measured on a one-batch overfit); 3e-4 climbs steadily
    latent_noise: float = (
        0.0  # relative to the latents' std (a generator's error); 0.05 stalled the fit at 16 dB
    )
    # Random square crops (multiples of 8) of the frames: a convolutional VAE learns the same kernels at a
    # quarter of the cost per window with 32-px crops of 64-px frames. 0: whole frames.
    crop: int = 0
    # Extra loss weight on pixels that move within the window (mouth, eyelids, head outline), in units of
    # the window's mean temporal deviation: plain MSE spends the capacity on the static background first,
    # and a 3-px mouth is the last thing it learns.
    motion_weight: float = 0.0
    # Place each crop where the window moves most (jittered by up to a quarter crop) instead of anywhere:
    # at 64 px the mouth is one 8×8 latent cell, and uniform 32-px crops show it in under half the windows.
    motion_crops: bool = False
    max_clips: int = 256
    eval_clips: int = 16
    seed: int = 0
    device: str = "cpu"  # a GPU fits in minutes what takes a 2-core CPU hours
    init: Path | None = None  # continue from this AutoencoderKLWan directory (an earlier, shorter fit)


@dataclass(frozen=True)
class VaeFitReport:
    dataset: str
    train_clips: int
    heldout_clips: int
    steps: int
    seconds: float
    heldout_psnr_db: float
    train_psnr_db: float
    size: int
    base_dim: int
    parameters: int


def psnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR over uint8 images (peak 255), pooled over every pixel of both arrays."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _roundtrip(vae: AutoencoderKLWan, frames: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W, 3] → the VAE's reconstruction, uint8, via the posterior mean (as extraction does)."""
    video = frames_to_video(frames[None]).to(vae.device)
    with torch.no_grad():
        out = vae.decode(vae.encode(video).latent_dist.mode()).sample
    return ((out[0].clamp(-1, 1).permute(1, 2, 3, 0).cpu().numpy() + 1.0) * 127.5).round().astype(np.uint8)


def decode_unclamped(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """`vae.decode(z).sample` without its final clamp to [-1, 1]: the clamp has no gradient outside the
    range, so pixels a young decoder overshoots would never be pulled back. Same causal per-latent-frame
    loop and cache as diffusers' `AutoencoderKLWan._decode` (untiled, no patchify)."""
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    frames = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        frames.append(
            vae.decoder(
                x[:, :, i : i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=i == 0
            )
        )
    vae.clear_cache()
    return torch.cat(frames, dim=2)


def motion_weighted_mse(decoded: torch.Tensor, video: torch.Tensor, motion_weight: float) -> torch.Tensor:
    """MSE with per-pixel weights 1 + λ·d/mean(d), d the pixel's temporal deviation over the window [B, 3, T, H, W]
    (channel-averaged); normalised by the mean weight, so λ = 0 is the (latent-balanced) MSE and the loss
    scale stays put."""
    error = (decoded - video) ** 2
    if motion_weight <= 0:
        return latent_balanced_mse(error)
    deviation = (video - video.mean(dim=2, keepdim=True)).abs().mean(dim=(1, 2), keepdim=True)
    weight = 1.0 + motion_weight * deviation / deviation.mean(dim=(3, 4), keepdim=True).clamp_min(1e-6)
    return latent_balanced_mse(weight * error) / weight.mean()


def _window(
    clip: np.ndarray, frames: int, crop: int, rng: np.random.Generator, at_motion: bool = False
) -> np.ndarray:
    """A random `frames`-long window of a clip, cropped to `crop`² at an 8-aligned offset when `crop` > 0:
    anywhere, or (`at_motion`) around the 8-aligned position whose crop holds the most temporal change."""
    start = int(rng.integers(0, len(clip) - frames + 1))
    window = clip[start : start + frames]
    height, width = window.shape[1:3]
    if not 0 < crop < min(height, width):
        return window
    if at_motion:
        # Centre the crop on the busiest half-crop square, then jitter by up to a quarter crop: the hot
        # square stays inside whatever the jitter or the frame border does.
        hot_y, hot_x = _busiest_square(window, crop // 2)
        steps = max(1, crop // 32)
        y, x = (
            int(np.clip(hot - crop // 4 + 8 * rng.integers(-steps, steps + 1), 0, side - crop)) // 8 * 8
            for hot, side in ((hot_y, height), (hot_x, width))
        )
    else:
        y, x = (8 * int(rng.integers(0, (side - crop) // 8 + 1)) for side in (height, width))
    return window[:, y : y + crop, x : x + crop]


def _busiest_square(window: np.ndarray, crop: int) -> tuple[int, int]:
    """The 8-aligned (y, x) whose crop² square holds the largest summed deviation from the window's mean frame."""
    deviation = np.abs(window.astype(np.float32) - window.mean(0, dtype=np.float32)).sum(axis=(0, 3))
    integral = np.pad(deviation.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, where = -1.0, (0, 0)
    for y in range(0, deviation.shape[0] - crop + 1, 8):
        for x in range(0, deviation.shape[1] - crop + 1, 8):
            total = (
                integral[y + crop, x + crop] - integral[y, x + crop] - integral[y + crop, x] + integral[y, x]
            )
            if total > best:
                best, where = float(total), (y, x)
    return where


def latent_balanced_mse(error: torch.Tensor) -> torch.Tensor:
    """Mean of per-pixel errors [B, 3, T, H, W] with each latent frame's pixels weighted equally: the causal
    VAE codes frame 0 alone and later frames four to a latent, so plain MSE gives the first latent (the
    portrait a generator starts from) a quarter of the weight of any other."""
    frames = error.shape[2]
    weight = torch.ones(frames, device=error.device, dtype=error.dtype)
    weight[0] = 4.0 if frames > 1 else 1.0
    weight = weight / weight.mean()
    return (error * weight[None, None, :, None, None]).mean()


def mean_psnr(vae: AutoencoderKLWan, clips: list[np.ndarray]) -> float:
    return float(np.mean([psnr_db(c, _roundtrip(vae, c)) for c in clips]))


def _latent_stats(vae: AutoencoderKLWan, clips: list[np.ndarray]) -> tuple[list[float], list[float]]:
    with torch.no_grad():
        z = torch.cat(
            [
                vae.encode(frames_to_video(c[None]).to(vae.device))
                .latent_dist.mode()
                .transpose(0, 1)
                .flatten(1)
                for c in clips
            ],
            dim=1,
        )
    return z.mean(1).tolist(), z.std(1).clamp_min(1e-4).tolist()


def fit_vae(
    dataset: str,
    train: list[np.ndarray],
    heldout: list[np.ndarray],
    out: Path,
    settings: VaeFitSettings,
    log: Callable[[str], None] = print,
) -> VaeFitReport:
    """Train on `train` clips (uint8 [T, H, W, 3], the train identities of `dataset`), measure PSNR on
    `heldout` (other identities), save to `out`. `weights.fit_data.split_clips` reads both from the tables."""
    if settings.window_frames % 4 != 1:
        raise UserError(f"window_frames must be 1 (mod 4), got {settings.window_frames}")
    if not train or not heldout:
        raise UserError(f"dataset {dataset!r}: a fit needs train and held-out clips")
    if min(len(c) for c in train) < settings.window_frames:
        raise UserError(
            f"clips of dataset {dataset!r} are shorter than window_frames={settings.window_frames}"
        )
    size = train[0].shape[1]
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    if settings.init is not None:
        vae = AutoencoderKLWan.from_pretrained(settings.init)
    else:
        vae = AutoencoderKLWan(
            base_dim=settings.base_dim, z_dim=Z_DIM, num_res_blocks=settings.num_res_blocks
        )
    vae.to(settings.device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=settings.lr)
    warmup = 50

    started = time.monotonic()
    deadline = started + 60.0 * settings.max_minutes

    def lr_at(step: int) -> float:
        """Warm-up, then a cosine over whichever budget, steps or minutes, runs out first."""
        if step < warmup:
            return (step + 1) / warmup
        progress = max(step / settings.steps, (time.monotonic() - started) / (deadline - started))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    step = 0
    vae.train()
    while step < settings.steps and time.monotonic() < deadline:
        picks = rng.integers(0, len(train), settings.batch_size)
        windows = [
            _window(train[i], settings.window_frames, settings.crop, rng, settings.motion_crops)
            for i in picks
        ]
        video = frames_to_video(np.stack(windows)).to(settings.device)
        z = vae.encode(video).latent_dist.mode()
        noisy = z + settings.latent_noise * z.detach().std() * torch.randn_like(z)
        decoded = decode_unclamped(vae, noisy)
        loss = motion_weighted_mse(decoded, video, settings.motion_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        if step % 100 == 0:
            mse = torch.nn.functional.mse_loss(decoded.detach(), video).item()
            train_psnr = 10 * math.log10(4.0 / max(mse, 1e-12))
            log(
                f"vae fit: step {step}, train-window PSNR {train_psnr:.2f} dB, {time.monotonic() - started:.0f} s"
            )
    vae.eval()
    mean, std = _latent_stats(vae, train[: settings.eval_clips * 2])
    vae.register_to_config(latents_mean=mean, latents_std=std)
    report = VaeFitReport(
        dataset=dataset,
        train_clips=len(train),
        heldout_clips=len(heldout),
        steps=step,
        seconds=round(time.monotonic() - started, 1),
        heldout_psnr_db=round(mean_psnr(vae, heldout), 2),
        train_psnr_db=round(mean_psnr(vae, train[: settings.eval_clips]), 2),
        size=size,
        base_dim=int(vae.config["base_dim"]),
        parameters=sum(p.numel() for p in vae.parameters()),
    )
    out.mkdir(parents=True, exist_ok=True)
    vae.cpu().save_pretrained(out)
    (out / FIT_REPORT).write_text(
        json.dumps(
            {**asdict(report), "settings": asdict(settings), "stand_in": "fitted"}, indent=1, default=str
        )
        + "\n"
    )
    return report
