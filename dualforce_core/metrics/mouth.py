"""Does the generated mouth follow the driving audio? Mouth opening read from pixels vs the audio envelope.

The reader is a small CNN regressor (`MouthProbe`) from a whole frame to the jaw opening in [0, 1], fitted
on ground-truth frames of the synthetic dataset's TRAIN identities (their sidecar `mouth_open`), then
applied to decoded frames — generated or real — of other identities. Like FID's Inception or SyncNet it
is a fixed measuring network: it sees only pixels, never latents or ground truth of the clip it scores.
Its correlation with the truth on held-out real frames is reported beside every score (the ceiling a
generator can reach through it). A colour rule cannot do this at 64 px: H.264's 4:2:0 chroma smears the
few-pixel mouth cavity into the lips and hair (r ≈ 0.3 against the truth).

The audio side is the waveform's RMS over each video frame's 40 ms, the envelope the synthetic jaw follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dualforce_core.errors import UserError

PROBE_SIZE = 64  # frames are resized to this square before the probe


def audio_envelope(audio: np.ndarray, sample_rate: int, fps: int, num_frames: int) -> np.ndarray:
    """RMS of the waveform over each video frame's span [i/fps, (i+1)/fps): [num_frames]."""
    hop = sample_rate // fps
    padded = np.zeros(num_frames * hop, np.float64)
    usable = min(len(audio), len(padded))
    padded[:usable] = np.asarray(audio, np.float64)[:usable]
    return np.sqrt((padded.reshape(num_frames, hop) ** 2).mean(axis=1))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two equal-length series; 0 when either is constant (no evidence either way)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"series must be 1-D and equal length, got {a.shape} and {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a**2).sum() * (b**2).sum()))
    return float((a * b).sum() / denom) if denom > 1e-12 else 0.0


class MouthProbe(nn.Module):
    """Frame [N, 3, 64, 64] in [-1, 1] → jaw opening [N]: four stride-2 conv blocks, pooled, linear."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for out in (width, width, 2 * width, 2 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(4, out), nn.SiLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


def _to_input(frames: np.ndarray) -> torch.Tensor:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3] RGB, got {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if x.shape[-1] != PROBE_SIZE or x.shape[-2] != PROBE_SIZE:
        x = nn.functional.interpolate(x, size=(PROBE_SIZE, PROBE_SIZE), mode="area")
    return x


@dataclass
class MouthReader:
    """A fitted probe and how well it reads real frames of unseen identities."""

    probe: MouthProbe
    heldout_r: float  # r(probe(real frames), true opening) on held-out identities

    @torch.no_grad()
    def opening(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [T, H, W, 3] RGB → [T] jaw opening as the probe reads it."""
        self.probe.eval()
        x = _to_input(frames)
        return torch.cat([self.probe(x[i : i + 256]) for i in range(0, len(x), 256)]).double().numpy()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.probe.state_dict().items()}
        save_file(state, str(path), metadata={"heldout_r": repr(self.heldout_r)})

    @classmethod
    def load(cls, path: Path) -> MouthReader:
        probe = MouthProbe()
        try:
            probe.load_state_dict(load_file(str(path)))
            with open(path, "rb") as handle:  # safetensors keeps metadata in its JSON header
                header_len = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(header_len))
            heldout_r = float(header["__metadata__"]["heldout_r"])
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            raise UserError(f"{path} is not a MouthProbe file: {err}") from None
        return cls(probe.eval(), heldout_r)

    def audio_correlation(
        self, frames: np.ndarray, audio: np.ndarray, sample_rate: int, fps: int, skip_frames: int = 1
    ) -> float:
        """r between the frames' mouth opening and the audio envelope over the same frames.

        `skip_frames`: leading frames left out — a generator's frame 0 is the reference portrait itself,
        which follows no audio.
        """
        opening = self.opening(frames)
        envelope = audio_envelope(audio, sample_rate, fps, len(frames))
        return pearson(opening[skip_frames:], envelope[skip_frames:])


def _blur(batch: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, 3, H, W] (reflect padding), σ in pixels."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=batch.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)
    x = nn.functional.pad(batch, (radius, radius, radius, radius), mode="reflect")
    x = nn.functional.conv2d(x, kernel.view(3, 1, 1, -1), groups=3)
    return nn.functional.conv2d(x, kernel.view(3, 1, -1, 1), groups=3)


def _degrade(batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """What a decoder does to a frame: half the batch blurred (σ up to 1.5 px) plus a little noise, so the
    probe reads a softened mouth as well as a sharp one instead of keying on its crisp edges."""
    out = batch.clone()
    for i in np.flatnonzero(rng.random(len(batch)) < 0.5):
        out[i : i + 1] = _blur(batch[i : i + 1], float(rng.uniform(0.4, 1.5)))
    noise = torch.from_numpy(rng.normal(0.0, 0.02, out.shape)).to(out.dtype)
    return out + noise


def fit_mouth_reader(
    train: list[tuple[np.ndarray, np.ndarray]],
    heldout: list[tuple[np.ndarray, np.ndarray]],
    steps: int = 600,
    batch_size: int = 64,
    seed: int = 0,
) -> MouthReader:
    """Fit on (frames uint8 [T, H, W, 3], true opening [T]) pairs; measure r on the held-out pairs."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.cat([_to_input(f) for f, _ in train])
    y = torch.from_numpy(np.concatenate([m for _, m in train])).float()
    probe = MouthProbe()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    probe.train()
    for _ in range(steps):
        pick = torch.from_numpy(rng.integers(0, len(x), batch_size))
        batch = x[pick]
        shift = [int(v) for v in rng.integers(-3, 4, 2)]  # small translations: generated heads drift
        batch = _degrade(torch.roll(batch, shifts=shift, dims=(2, 3)), rng)
        loss = nn.functional.mse_loss(probe(batch), y[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    reader = MouthReader(probe.eval(), heldout_r=0.0)
    predicted = np.concatenate([reader.opening(f) for f, _ in heldout])
    reader.heldout_r = pearson(predicted, np.concatenate([m for _, m in heldout]))
    return reader
