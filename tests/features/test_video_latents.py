from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.media import decode_video
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.latents import (
    LatentStage,
    decode_latents,
    encode_latents,
    extract_video_latents,
    load_vae,
)
from dualforce_core.weights import WeightsRegistry
from tests.features.feature_fixtures import MakeClips, clip_frames


@pytest.fixture(scope="module")
def vae(weights_root: Path) -> AutoencoderKLWan:
    return load_vae(WeightsRegistry(weights_root).path("wan_vae"))


def test_stand_in_keeps_z_dim_strides_and_writes_latent_statistics(vae: AutoencoderKLWan) -> None:
    assert vae.config["z_dim"] == 16 and vae.config["base_dim"] == 8
    assert vae.config["temperal_downsample"] == [False, True, True] and len(vae.config["dim_mult"]) == 4
    assert len(vae.config["latents_mean"]) == len(vae.config["latents_std"]) == 16
    default_std = inspect.signature(AutoencoderKLWan.__init__).parameters["latents_std"].default
    assert vae.config["latents_std"] != default_std  # its own, not the Wan 2.1 defaults


@pytest.mark.parametrize(("frames", "size"), [(5, 32), (9, 48)])
def test_latent_shape_is_16_by_1_plus_t_minus_1_over_4(vae: AutoencoderKLWan, frames: int, size: int) -> None:
    video = np.stack([clip_frames(frames, size, seed=0)])
    latents = encode_latents(vae, video)
    assert latents.shape == (1, 16, 1 + (frames - 1) // 4, size // 8, size // 8)


def test_normalisation_uses_the_config_statistics(vae: AutoencoderKLWan) -> None:
    video = np.stack([clip_frames(5, 32, seed=1)])
    normalised = encode_latents(vae, video)
    x = torch.from_numpy(video).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    with torch.no_grad():
        raw = vae.encode(x).latent_dist.mode()
    mean = torch.tensor(vae.config["latents_mean"]).view(1, 16, 1, 1, 1)
    std = torch.tensor(vae.config["latents_std"]).view(1, 16, 1, 1, 1)
    assert torch.allclose(normalised * std + mean, raw, atol=1e-5)


def test_frame_counts_the_vae_would_truncate_are_refused(vae: AutoencoderKLWan) -> None:
    with pytest.raises(UserError, match=r"1 \(mod 4\)"):
        encode_latents(vae, np.zeros((1, 6, 32, 32, 3), np.uint8))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_decode_of_the_cached_latent_equals_decode_of_the_rounded_fresh_latent(
    config: DualForceConfig, make_clips: MakeClips, vae: AutoencoderKLWan, dtype: str
) -> None:
    """'Exactly' means: the Lance cell holds the fresh latent rounded to `dtype` bit for bit, so decoding
    it is torch.equal to decoding that rounded latent. Against the unrounded fp32 latent only closeness holds."""
    config = config.model_copy(update={"data": config.data.model_copy(update={"latent_dtype": dtype})})
    make_clips("rt", 1, num_frames=5, size=32)
    extract_video_latents("rt", config, progress=False)
    row = read_rows("video_latents").to_pylist()[0]
    assert row["shape"] == [16, 2, 4, 4] and row["ref_shape"] == [16, 1, 4, 4] and row["dtype"] == dtype
    cached = decode_tensor(row["latents"], row["shape"], row["dtype"])[None]

    frames = decode_video(read_rows("clips", ["video"]).to_pylist()[0]["video"])[None]
    fresh = encode_latents(vae, frames)
    rounded = fresh.to(getattr(torch, dtype))
    assert torch.equal(cached, rounded)
    from_cache = decode_latents(vae, cached)
    assert from_cache.shape == (1, 3, 5, 32, 32)
    assert torch.equal(from_cache, decode_latents(vae, rounded))
    assert torch.allclose(from_cache, decode_latents(vae, fresh), atol=0.05)

    reference = decode_tensor(row["ref_latent"], row["ref_shape"], row["dtype"])
    assert torch.equal(reference, encode_latents(vae, frames[:, :1])[0].to(getattr(torch, dtype)))
    # Causal VAE: frame 0 is encoded alone either way, but the 1×1×1 quant conv then runs over 1 vs 2 latent
    # frames (other shapes, maybe other kernels): an fp32 ulp can flip one rounding to `dtype`, a step ≤ eps·|x|
    # of that dtype (atol covers fp16's subnormal spacing, 6e-8).
    step = torch.finfo(reference.dtype).eps
    torch.testing.assert_close(reference.float(), cached[0, :, :1].float(), rtol=step, atol=1e-7)


def test_dtype_and_tiling_settings_are_part_of_the_extractor_id(weights_root: Path) -> None:
    registry = WeightsRegistry(weights_root)
    ids = {LatentStage(registry, d, t).extractor_id for d in ("bfloat16", "float16") for t in (False, True)}
    assert len(ids) == 4 and all(i.startswith("wan_vae:") for i in ids)
    assert LatentStage(registry, "bfloat16", True).extractor_id.endswith(":bfloat16:tiling=1")
