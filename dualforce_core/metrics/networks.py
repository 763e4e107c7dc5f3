"""The four metric networks loaded from the weights registry, with what a report must say about them.

Every report carries, per network, the file it came from, its sha256, and whether it is a random
stand-in written by `dualforce weights init-random` (then the numbers are meaningless, and the
report has to say so), plus the protocol: crops, resolutions, clip length and offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnxruntime as ort
import torch

from dualforce_core.metrics import i3d, identity, inception, syncnet
from dualforce_core.metrics.mouth import MouthReader
from dualforce_core.timeline import FPS
from dualforce_core.weights.registry import WeightsRegistry

NAMES = ("inception", "i3d", "syncnet", "arcface")
OPTIONAL_MOUTH = "mouth_probe"


@dataclass
class MetricNetworks:
    inception: torch.jit.ScriptModule
    i3d: torch.jit.ScriptModule
    syncnet: syncnet.SyncNet
    arcface: ort.InferenceSession
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    mouth: MouthReader | None = None  # optional: fitted by `weights fit` on a synthetic dataset

    @classmethod
    def from_registry(cls, registry: WeightsRegistry) -> MetricNetworks:
        """Load all four through their real loaders; a missing file is a `MissingWeightsError`."""
        paths = {name: registry.path(name) for name in NAMES}
        weights = {
            name: {
                "path": str(path),
                "sha256": registry.fingerprint(name),
                "stand_in": registry.is_stand_in(name),
            }
            for name, path in paths.items()
        }
        mouth = None
        if registry.location(OPTIONAL_MOUTH).is_file():
            mouth = MouthReader.load(registry.path(OPTIONAL_MOUTH))
            weights[OPTIONAL_MOUTH] = {
                "path": str(registry.location(OPTIONAL_MOUTH)),
                "sha256": registry.fingerprint(OPTIONAL_MOUTH),
                "stand_in": registry.is_stand_in(OPTIONAL_MOUTH),
                "heldout_r": mouth.heldout_r,
            }
        return cls(
            inception=inception.load_inception(paths["inception"]),
            i3d=i3d.load_i3d(paths["i3d"]),
            syncnet=syncnet.load_syncnet(paths["syncnet"]),
            arcface=identity.load_arcface(paths["arcface"]),
            weights=weights,
            mouth=mouth,
        )

    @property
    def any_stand_in(self) -> bool:
        return any(entry["stand_in"] for entry in self.weights.values())


def protocol(
    max_offset: int = syncnet.DEFAULT_MAX_OFFSET, clip_frames: int = i3d.CLIP_FRAMES
) -> dict[str, str]:
    """How each metric is computed, in words, for the report."""
    return {
        "FID": (
            f"InceptionV3 pool3 {inception.FEATURE_DIM}-d (inception-2015-12-05.pt, StyleGAN protocol: uint8 "
            f"frames at native size, resized to {inception.INPUT_SIZE} inside the network); every frame; "
            "unbiased covariance; exact Fréchet distance via symmetric eigen-decomposition"
        ),
        "FVD": (
            f"I3D Kinetics-400 {i3d.FEATURE_DIM}-d logits (i3d_torchscript.pt, StyleGAN-V protocol: "
            f"rescale=True, resize=True to {i3d.INPUT_SIZE}); non-overlapping {clip_frames}-frame clips"
        ),
        "Sync": (
            f"SyncNet v2, {syncnet.CROP_SIZE}x{syncnet.CROP_SIZE} BGR face crops at {FPS} fps, "
            f"{syncnet.WINDOW_FRAMES}-frame windows vs {syncnet.WINDOW_STEPS} MFCC steps, offsets ±{max_offset}; "
            "Sync-D = min mean distance, Sync-C = median − min (syncnet_python)"
        ),
        "CSIM/ACD": (
            f"ArcFace {identity.EMBEDDING_DIM}-d on {identity.FACE_SIZE}x{identity.FACE_SIZE} crops; CSIM = mean "
            "cosine to the reference portrait; ACD = mean L2 distance of normalised embeddings, frame by frame"
        ),
        "mouth-audio r": (
            "synthetic data only: Pearson r per clip between the jaw opening that a MouthProbe CNN (fitted by "
            "`weights fit` on the train identities' ground-truth frames) reads from the pixels and the audio's "
            "RMS envelope per 40 ms frame, frame 0 (the reference) left out; mean over clips"
        ),
        "crops": (
            "one square per clip centred on the clip's face box (frame centre without one), side = the box's "
            "longer side, resized (area filter when shrinking); no landmark alignment; same for real and generated"
        ),
    }
