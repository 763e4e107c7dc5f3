"""Chunk-by-chunk Wan-VAE decoding that gives exactly the frames of a one-shot decode.

diffusers' `AutoencoderKLWan._decode` already runs the causal decoder one latent frame at a time,
carrying every causal conv's last input frames in a list (`feat_cache`, one slot per `WanCausalConv3d`)
and treating the very first latent frame specially (`first_chunk`: it becomes 1 video frame, every
later one 4). It throws that list away at the end of each call. This driver owns the list instead and
keeps it between calls, so latents can be decoded as the sampler produces them.
"""

from __future__ import annotations

import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan, WanCausalConv3d, unpatchify
from torch import Tensor


class StreamingVaeDecoder:
    """`decode(latents)` on successive chunks of normalised latents [B, 16, F, h, w] → [B, 3, T, H, W]."""

    def __init__(self, vae: AutoencoderKLWan) -> None:
        self.vae = vae
        self.num_convs = sum(isinstance(m, WanCausalConv3d) for m in vae.decoder.modules())
        param = next(vae.parameters())
        shape = (1, -1, 1, 1, 1)
        self.mean = torch.tensor(vae.config["latents_mean"], dtype=torch.float32, device=param.device).view(
            shape
        )
        self.std = torch.tensor(vae.config["latents_std"], dtype=torch.float32, device=param.device).view(
            shape
        )
        self.reset()

    def reset(self) -> None:
        """Start a new video: the next latent frame decoded is treated as frame 0."""
        self.feat_cache: list[Tensor | None] = [None] * self.num_convs
        self.latent_frames = 0

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Video in [-1, 1], float32: 1 frame for the stream's first latent frame, 4 for every other."""
        param = next(self.vae.parameters())
        z = latents.to(param.device, torch.float32) * self.std + self.mean
        x = self.vae.post_quant_conv(z.to(param.dtype))
        outputs = []
        for i in range(x.shape[2]):
            outputs.append(
                self.vae.decoder(
                    x[:, :, i : i + 1],
                    feat_cache=self.feat_cache,
                    feat_idx=[0],
                    first_chunk=self.latent_frames == 0,
                )
            )
            self.latent_frames += 1
        out = torch.cat(outputs, dim=2)
        patch_size = self.vae.config.get("patch_size")
        if patch_size is not None:
            out = unpatchify(out, patch_size=patch_size)
        return out.float().clamp(-1.0, 1.0)


def to_uint8_frames(video: Tensor) -> Tensor:
    """[B=1, 3, T, H, W] in [-1, 1] → uint8 [T, H, W, 3] (what players and encoders take)."""
    return ((video[0].permute(1, 2, 3, 0) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()
