"""SyncNet v2 (Chung & Zisserman, ACCV 2016 workshops; joonson/syncnet_python) for Sync-C / Sync-D.

Our implementation of the published network, state-dict compatible with `syncnet_v2.model`: the four
`nn.Sequential` stacks keep the reference's names and layer indices so the file loads with
`strict=True`. Lip stream: 5 consecutive 224×224 face crops, BGR channel order, raw 0–255 values
(syncnet_python feeds `cv2.imread` frames as floats, unnormalised) → 1024-d. Audio stream: 13 MFCCs
× 20 steps (0.2 s, the same span as 5 frames at 25 fps) → 1024-d.

Windowing follows `SyncNetInstance.evaluate`: usable length `min(frames, samples // 640)`, window i
pairs frames i..i+4 with MFCC steps 4i..4i+19, `usable − 5` windows, and the audio embeddings are
zero-padded by K windows at both ends before shifting, so edge offsets compare against a zero vector
exactly as the reference does. Distances use `torch.nn.functional.pairwise_distance` (eps 1e-6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dualforce_core.errors import UserError
from dualforce_core.metrics.mfcc import FRAME_STEP, mfcc
from dualforce_core.timeline import SAMPLE_RATE, SAMPLES_PER_FRAME

WINDOW_FRAMES = 5
MFCC_STEPS_PER_FRAME = SAMPLES_PER_FRAME // FRAME_STEP  # 4
WINDOW_STEPS = WINDOW_FRAMES * MFCC_STEPS_PER_FRAME  # 20
CROP_SIZE = 224
EMBEDDING_DIM = 1024
DEFAULT_MAX_OFFSET = 15


def _conv_block(conv: nn.Module, channels: int, dims: int) -> list[nn.Module]:
    norm = nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)
    return [conv, norm, nn.ReLU(inplace=True)]


def _head() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, EMBEDDING_DIM)
    )


class SyncNet(nn.Module):
    """Two towers embedding 0.2 s of lips and of audio into one space where in-sync pairs are close."""

    def __init__(self) -> None:
        super().__init__()
        # Layer order fixes the state-dict indices (netcnnaud.0, .1, .4, .5, …): do not reorder.
        self.netcnnaud = nn.Sequential(
            *_conv_block(nn.Conv2d(1, 64, 3, padding=1), 64, 2),
            nn.MaxPool2d(1, 1),
            *_conv_block(nn.Conv2d(64, 192, 3, padding=1), 192, 2),
            nn.MaxPool2d(3, stride=(1, 2)),
            *_conv_block(nn.Conv2d(192, 384, 3, padding=1), 384, 2),
            *_conv_block(nn.Conv2d(384, 256, 3, padding=1), 256, 2),
            *_conv_block(nn.Conv2d(256, 256, 3, padding=1), 256, 2),
            nn.MaxPool2d(3, stride=2),
            *_conv_block(nn.Conv2d(256, 512, (5, 4)), 512, 2),
        )
        self.netfcaud = _head()
        self.netfclip = _head()
        self.netcnnlip = nn.Sequential(
            *_conv_block(nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, 3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_block(nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, 3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),
            *_conv_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),
            *_conv_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_block(nn.Conv3d(256, 512, (1, 6, 6)), 512, 3),
        )

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        """[B, 1, 13, 20] MFCC windows → [B, 1024]."""
        return self.netfcaud(self.netcnnaud(mfcc_windows).flatten(1))

    def forward_lip(self, frame_windows: torch.Tensor) -> torch.Tensor:
        """[B, 3, 5, 224, 224] BGR 0–255 frame windows → [B, 1024]."""
        return self.netfclip(self.netcnnlip(frame_windows).flatten(1))


def load_syncnet(path: str | Path) -> SyncNet:
    """SyncNet from a `syncnet_v2.model` state dict, `torch.load(weights_only=True)` and strict loading.

    BatchNorm `num_batches_tracked` counters (absent from checkpoints written before PyTorch 0.4.1,
    unused in eval mode) are filled with 0 when missing; every other tensor must match exactly.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"cannot read SyncNet weights {path}: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} is not a SyncNet state dict (a mapping of parameter names to tensors)")
    with torch.device("meta"):  # no random init of 13.6M parameters that are overwritten at once
        net = SyncNet()
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros(value.shape, dtype=value.dtype)
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise UserError(f"{path} does not match the SyncNet v2 architecture:\n{error}") from error
    return net.eval()


def write_stand_in(path: Path, seed: int) -> None:
    """A randomly initialised SyncNet saved as a state dict, the format of `syncnet_v2.model`."""
    torch.manual_seed(seed)
    torch.save(SyncNet().state_dict(), path)


def _check_inputs(frames: Any, audio: Any) -> tuple[np.ndarray, np.ndarray]:
    video = np.asarray(frames)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise UserError(
            f"SyncNet needs uint8 RGB face crops [T, {CROP_SIZE}, {CROP_SIZE}, 3], got {video.dtype} "
            f"{video.shape} (metrics.crops.face_crops makes them)"
        )
    sound = np.asarray(audio, dtype=np.float32)
    if sound.ndim != 1:
        raise UserError(f"audio must be mono 16 kHz samples [N], got shape {sound.shape}")
    return video, sound


@torch.inference_mode()
def syncnet_distances(
    net: SyncNet,
    frames: Any,
    audio: Any,
    max_offset: int = DEFAULT_MAX_OFFSET,
    batch_size: int = 20,
) -> np.ndarray:
    """Distances [2K+1, num_windows] between lip and audio embeddings, row r = offset r − K.

    frames: uint8 RGB face crops [T, 224, 224, 3] at 25 fps; audio: float mono at 16 kHz in [-1, 1].
    Row r compares window i's lips with the audio window i − (r − K): a positive offset means the lips
    move that many frames after the sound, the sign syncnet_python reports.
    """
    video, sound = _check_inputs(frames, audio)
    usable = min(video.shape[0], sound.shape[0] // SAMPLES_PER_FRAME)
    windows = usable - WINDOW_FRAMES
    if windows < 1:
        raise UserError(
            f"Sync needs at least {WINDOW_FRAMES + 1} frames and {WINDOW_FRAMES + 1} frames' worth of audio "
            f"(0.24 s); got {video.shape[0]} frames and {sound.shape[0] / SAMPLE_RATE:.3f} s"
        )
    cepstra = torch.from_numpy(mfcc(sound).T.astype(np.float32))  # [13, steps]
    lips, voices = [], []
    for start in range(0, windows, batch_size):
        stop = min(windows, start + batch_size)
        clip = torch.from_numpy(np.ascontiguousarray(video[start : stop + WINDOW_FRAMES - 1, :, :, ::-1]))
        clip = clip.permute(3, 0, 1, 2).float()  # [3, n + 4, H, W], BGR
        lip_in = torch.stack([clip[:, i : i + WINDOW_FRAMES] for i in range(stop - start)])
        aud_in = torch.stack(
            [
                cepstra[None, :, i * MFCC_STEPS_PER_FRAME : i * MFCC_STEPS_PER_FRAME + WINDOW_STEPS]
                for i in range(start, stop)
            ]
        )
        lips.append(net.forward_lip(lip_in))
        voices.append(net.forward_aud(aud_in))
    lip, voice = torch.cat(lips), torch.cat(voices)
    padded = nn.functional.pad(voice, (0, 0, max_offset, max_offset))
    rows = [
        nn.functional.pairwise_distance(lip, padded[2 * max_offset - r : 2 * max_offset - r + windows])
        for r in range(2 * max_offset + 1)
    ]
    return torch.stack(rows).double().numpy()
