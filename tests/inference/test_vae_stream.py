from __future__ import annotations

import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.features.latents import decode_latents
from dualforce_core.inference.vae_stream import StreamingVaeDecoder


def test_chunked_decode_equals_one_shot_decode(tiny_vae: AutoencoderKLWan) -> None:
    latents = torch.randn(1, 16, 6, 4, 4, generator=torch.Generator().manual_seed(1))
    whole = decode_latents(tiny_vae, latents)
    decoder = StreamingVaeDecoder(tiny_vae)
    pieces = [decoder.decode(latents[:, :, a:b]) for a, b in ((0, 1), (1, 3), (3, 6))]
    assert [p.shape[2] for p in pieces] == [1, 8, 12]
    streamed = torch.cat(pieces, dim=2)
    assert streamed.shape == whole.shape == (1, 3, 21, 32, 32)
    torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-5)
    # The carried cache matters: decoding a later chunk on its own gives different frames.
    alone = StreamingVaeDecoder(tiny_vae).decode(latents[:, :, 3:6])
    assert not torch.allclose(alone[:, :, 1:], streamed[:, :, 13:], atol=1e-3)


def test_reset_starts_a_new_video(tiny_vae: AutoencoderKLWan) -> None:
    latents = torch.randn(1, 16, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    decoder = StreamingVaeDecoder(tiny_vae)
    first = decoder.decode(latents)
    decoder.reset()
    torch.testing.assert_close(decoder.decode(latents), first)
