from __future__ import annotations

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.inference.config import InferenceConfig
from dualforce_core.inference.sampler import AudioTrack, ChunkedSampler, SampledChunk
from dualforce_core.models import DualForceModel
from dualforce_core.schedulers.config import DiffusionConfig


def reference(model: DualForceModel, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    k, d = model.config.struct_tokens_per_frame, model.projector.token_dim
    return torch.randn(1, 16, 1, 4, 4, generator=g), torch.randn(1, 1, k, d, generator=g)


def track(model: DualForceModel, latent_frames: int, seed: int = 1) -> AudioTrack:
    c = model.config
    tokens = c.audio_tokens_per_video_frame * (1 + 4 * (latent_frames - 1))
    g = torch.Generator().manual_seed(seed)
    return AudioTrack(torch.randn(tokens, c.audio_layers, c.audio_dim, generator=g), ended=True)


def sample(
    model: DualForceModel, chunks: int, no_kv_cache: bool = False, **cfg: object
) -> list[SampledChunk]:
    inference = InferenceConfig.model_validate({"steps": 2, "cache_frames": 3, **cfg})
    sampler = ChunkedSampler(model, inference, DiffusionConfig(context_sigma=0.05), no_kv_cache=no_kv_cache)
    sampler.total_chunks = chunks
    audio = track(model, 1 + chunks * model.config.chunk_frames)
    sampler.start(*reference(model), audio)
    out = [sampler.next_chunk(audio) for _ in range(chunks)]
    if not no_kv_cache:
        assert sampler.cache.evicted > 0  # the window really rolled
    return out


def assert_same(a: list[SampledChunk], b: list[SampledChunk]) -> None:
    assert [c.first_frame for c in a] == [c.first_frame for c in b]
    for x, y in zip(a, b):
        torch.testing.assert_close(x.video, y.video, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(x.struct, y.struct, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "cfg",
    [{}, {"audio_guidance": 2.5}, {"pipelined": True, "pipeline_lag": 1}],
    ids=["plain", "cfg", "pipelined"],
)
def test_cached_sampling_equals_recomputed_context_after_eviction(
    tiny_model: DualForceModel, cfg: dict
) -> None:
    cached = sample(tiny_model, 5, **cfg)
    recomputed = sample(tiny_model, 5, no_kv_cache=True, **cfg)
    assert_same(cached, recomputed)
    assert [c.first_frame for c in cached] == [1, 3, 5, 7, 9]
    assert all(torch.isfinite(c.video).all() for c in cached)


def test_sampling_is_seeded(tiny_model: DualForceModel) -> None:
    assert_same(sample(tiny_model, 3), sample(tiny_model, 3))
    other = sample(tiny_model, 3, seed=7)
    assert not torch.allclose(other[0].video, sample(tiny_model, 3)[0].video)


def test_guidance_and_pipelining_change_the_result(tiny_model: DualForceModel) -> None:
    plain = sample(tiny_model, 3)
    for cfg in ({"audio_guidance": 3.0}, {"pipelined": True}):
        other = sample(tiny_model, 3, **cfg)
        assert not torch.allclose(other[2].video, plain[2].video, atol=1e-3)


def test_cache_memory_is_flat_for_audio_ten_times_the_window(tiny_model: DualForceModel) -> None:
    inference = InferenceConfig(steps=1, cache_frames=2)
    sampler = ChunkedSampler(tiny_model, inference, DiffusionConfig())
    chunks = 10  # 20 latent frames of audio: 10x the cache window
    audio = track(tiny_model, 1 + 2 * chunks)
    sampler.start(*reference(tiny_model), audio)
    sampler.next_chunk(audio)
    size, pointers = sampler.cache.allocated_bytes(), [b.data_ptr() for b in sampler.cache.buffers()]
    assert size > 0 and len(sampler.cache) == 2 * 2 + 2  # self-attention of both towers + one bridge layer
    for _ in range(chunks - 1):
        sampler.next_chunk(audio)
        assert sampler.cache.allocated_bytes() == size
        assert [b.data_ptr() for b in sampler.cache.buffers()] == pointers
    assert sampler.cache.frames == 2 and sampler.cache.evicted == 2 * chunks - 2


def test_chunks_need_the_reference_first(tiny_model: DualForceModel) -> None:
    sampler = ChunkedSampler(tiny_model, InferenceConfig(steps=1), DiffusionConfig())
    with pytest.raises(UserError, match="reference"):
        sampler.next_chunk(track(tiny_model, 3))


def test_windowed_audio_slice_gives_the_full_track_result(tiny_model: DualForceModel) -> None:
    sampler = ChunkedSampler(tiny_model, InferenceConfig(steps=1), DiffusionConfig())
    assert sampler.model is tiny_model  # the sampler runs the given parameters, not a copy
    kw = tiny_model.dummy_inputs(batch_size=1, latent_frames=2, height=4, width=4)
    audio = track(tiny_model, 12).tokens[None]
    start, end = tiny_model.audio_span(5, 2)
    assert 0 < start < end < audio.shape[1]
    full = tiny_model(**{**kw, "audio": audio}, frame_offset=5)
    sliced = tiny_model(**{**kw, "audio": audio[:, start:end]}, frame_offset=5, audio_offset=start)
    torch.testing.assert_close(sliced.video, full.video, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sliced.struct, full.struct, rtol=1e-5, atol=1e-5)
    # A misplaced slice is visible: the offset really is used.
    shifted = tiny_model(
        **{**kw, "audio": audio[:, start + 1 : end + 1]}, frame_offset=5, audio_offset=start + 1
    )
    assert not torch.allclose(shifted.video, full.video, atol=1e-4)
