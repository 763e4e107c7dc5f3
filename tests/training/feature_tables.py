"""Feature-table rows for training tests, written with the tables' declared schemas and `upsert`.

The content is synthetic but learnable: each clip is a phase φ and a speed; latents, motion, audio and
FLAME are smooth functions of (φ, speed, time), so a model can reduce its loss on them quickly.
Structure statistics come from the real `compute_struct_stats`.
"""

from __future__ import annotations

import torch

from dualforce_core.data.lance_store import upsert
from dualforce_core.data.struct_stats import compute_struct_stats
from dualforce_core.data.tables import AUDIO_FEATURES, FLAME_PARAMS, STRUCT_FEATURES, VIDEO_LATENTS
from dualforce_core.data.tensor_codec import encode_tensor

LATENT_CHANNELS = 16


def clip_tensors(
    index: int, latent_frames: int, size: int, audio_layers: int, audio_dim: int
) -> dict[str, torch.Tensor]:
    frames = 1 + 4 * (latent_frames - 1)
    phase, speed = 0.7 * index, 0.2 + 0.05 * (index % 3)
    t_video = torch.arange(frames, dtype=torch.float32)
    t_latent = torch.arange(latent_frames, dtype=torch.float32)
    y = torch.linspace(-1, 1, size)
    channels = torch.arange(LATENT_CHANNELS, dtype=torch.float32)
    latents = torch.sin(
        phase
        + 0.3 * channels[:, None, None, None]
        + 4 * speed * t_latent[None, :, None, None]
        + 2 * y[None, None, :, None]
        - y[None, None, None, :]
    )
    motion = torch.sin(phase + speed * t_video[:, None] + 0.1 * torch.arange(70)[None, :]) * 2.0
    t_audio = torch.arange(2 * frames, dtype=torch.float32) / 2
    audio = torch.cos(
        phase
        + speed * t_audio[:, None, None]
        + 0.2 * torch.arange(audio_layers)[None, :, None]
        + 0.1 * torch.arange(audio_dim)[None, None, :]
    )
    flame = torch.tanh(motion[:, :53]) * 0.5
    return {
        "latents": latents,
        "ref": latents[:, :1].clone(),
        "motion": motion,
        "audio": audio,
        "flame": flame,
    }


def write_feature_tables(
    dataset: str,
    num_clips: int = 8,
    latent_frames: int | list[int] = 3,
    size: int = 8,
    audio_layers: int = 3,
    audio_dim: int = 32,
    flame: bool = True,
    first_index: int = 0,
) -> list[str]:
    """Rows for `num_clips` clips in video_latents, struct_features, audio_features (and flame_params),
    plus `stats/<dataset>.json`; returns the clip ids."""
    frames_of = latent_frames if isinstance(latent_frames, list) else [latent_frames] * num_clips
    rows: dict[str, dict[str, list]] = {name: {} for name in ("video", "struct", "audio", "flame")}

    def add(table: str, **values: object) -> None:
        for key, value in values.items():
            rows[table].setdefault(key, []).append(value)

    ids = []
    for i in range(num_clips):
        clip_id = f"{dataset}-{first_index + i:04d}"
        ids.append(clip_id)
        t = clip_tensors(first_index + i, frames_of[i], size, audio_layers, audio_dim)
        lat, lat_shape, lat_dtype = encode_tensor(t["latents"], "bfloat16")
        ref, ref_shape, _ = encode_tensor(t["ref"], "bfloat16")
        common = {"clip_id": clip_id, "dataset": dataset, "extractor_id": "test"}
        add(
            "video",
            **common,
            latents=lat,
            shape=lat_shape,
            dtype=lat_dtype,
            ref_latent=ref,
            ref_shape=ref_shape,
        )
        motion, motion_shape, _ = encode_tensor(t["motion"], "float32")
        kp = encode_tensor(torch.zeros(21, 3), "float32")[0]
        add("struct", **common, motion=motion, shape=motion_shape, canonical_kp=kp)
        feats, feat_shape, feat_dtype = encode_tensor(t["audio"], "float16")
        add(
            "audio",
            **common,
            features=feats,
            shape=feat_shape,
            dtype=feat_dtype,
            num_layers=audio_layers,
            dim=audio_dim,
        )
        params, params_shape, _ = encode_tensor(t["flame"], "float32")
        add("flame", **common, params=params, shape=params_shape)

    upsert(VIDEO_LATENTS.name, VIDEO_LATENTS.rows(rows["video"]))
    upsert(STRUCT_FEATURES.name, STRUCT_FEATURES.rows(rows["struct"]))
    upsert(AUDIO_FEATURES.name, AUDIO_FEATURES.rows(rows["audio"]))
    if flame:
        upsert(FLAME_PARAMS.name, FLAME_PARAMS.rows(rows["flame"]))
    compute_struct_stats(dataset)
    return ids
