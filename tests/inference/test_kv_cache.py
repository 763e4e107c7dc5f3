"""The streaming cache owns the write: passes attend views of pre-allocated buffers, audio K/V once per chunk."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

import dualforce_core.models.block as block_module
from dualforce_core.inference.config import InferenceConfig
from dualforce_core.inference.kv_cache import MultiModalKVCache
from dualforce_core.inference.sampler import ChunkedSampler
from dualforce_core.models import DualForceModel
from dualforce_core.schedulers.config import DiffusionConfig
from tests.inference.test_sampler import reference, track


def frames(*values: float, per_frame: int = 2) -> Tensor:
    """[1, len(values) · per_frame, 1, 1]: every token of a frame holds the frame's value."""
    return torch.tensor(values).repeat_interleave(per_frame)[None, :, None, None]


def test_passes_extend_the_window_and_only_writes_commit() -> None:
    cache = MultiModalKVCache(cache_frames=2, max_pass_frames=1)
    with cache.writing(1):
        cache.extend("layer", frames(0.0), -frames(0.0))
    buffer = cache.buffers()[0]
    for value in (1.0, 2.0, 3.0):
        k, v = cache.extend("layer", frames(value + 0.5), -frames(value + 0.5))  # a denoising pass
        assert k.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()
        held = [0.0, *range(max(1, int(value) - 2), int(value))]
        torch.testing.assert_close(k, frames(*held, value + 0.5))
        torch.testing.assert_close(v, -frames(*held, value + 0.5))
        with cache.writing(1):
            k, _ = cache.extend("layer", frames(value), -frames(value))
            torch.testing.assert_close(k, frames(*held, value))  # a view: valid until the next call
    assert cache.frames == 2 and cache.evicted == 1
    k, _ = cache.extend("layer", frames(9.0), frames(9.0))
    torch.testing.assert_close(k, frames(0.0, 2.0, 3.0, 9.0))  # evicted in order, sink kept
    assert cache.buffers()[0] is buffer and buffer.shape[1] == 2 * (1 + 2 + 1)


def test_a_pass_larger_than_the_free_tail_is_refused() -> None:
    cache = MultiModalKVCache(cache_frames=2, max_pass_frames=1)
    with cache.writing(1):
        cache.extend("layer", frames(0.0), frames(0.0))
    with pytest.raises(ValueError, match="free tail"):
        cache.extend("layer", frames(1.0, 2.0), frames(1.0, 2.0))


def test_context_kv_is_computed_once_per_window() -> None:
    cache = MultiModalKVCache(cache_frames=2, max_pass_frames=1)
    calls: list[int] = []

    def compute(value: float) -> Any:
        def run() -> tuple[Tensor, Tensor]:
            calls.append(1)
            return frames(value), frames(value)

        return run

    first = cache.context_kv("audio", (0, 10), compute(1.0))
    again = cache.context_kv("audio", (0, 10), compute(2.0))
    assert len(calls) == 1 and again[0] is first[0]
    moved = cache.context_kv("audio", (4, 10), compute(3.0))
    assert len(calls) == 2 and moved[0][0, 0, 0, 0] == 3.0
    cache.context_kv("other", (4, 10), compute(4.0))  # layers never share entries
    assert len(calls) == 3


class CatsOfCache(TorchDispatchMode):
    """Records every `aten.cat` / `aten.clone` that reads one of the cache's buffers."""

    def __init__(self, storages: set[int]) -> None:
        super().__init__()
        self.storages = storages
        self.hits: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.overloadpacket in (torch.ops.aten.cat, torch.ops.aten.clone):
            flat = args[0] if func.overloadpacket is torch.ops.aten.cat else [args[0]]
            if any(t.untyped_storage().data_ptr() in self.storages for t in flat):
                self.hits.append(str(func))
        return func(*args, **(kwargs or {}))


def test_steady_state_streaming_attends_cache_views_without_allocating(
    tiny_model: DualForceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampler = ChunkedSampler(tiny_model, InferenceConfig(steps=2, cache_frames=2), DiffusionConfig())
    audio = track(tiny_model, 1 + 2 * 5)
    sampler.start(*reference(tiny_model), audio)
    for _ in range(2):  # fill the window: from here on every write evicts
        sampler.next_chunk(audio)
    buffers = sampler.cache.buffers()
    pointers, size = [b.data_ptr() for b in buffers], sampler.cache.allocated_bytes()
    evicted = sampler.cache.evicted
    storages = {b.untyped_storage().data_ptr() for b in buffers}
    key_storages = {b.untyped_storage().data_ptr() for b in buffers[: len(buffers) // 2]}
    attended: list[bool] = []
    real_attend = block_module.attend

    def spy(q: Tensor, k: Tensor, v: Tensor, *rest: Any) -> Tensor:
        in_cache = k.untyped_storage().data_ptr() in key_storages
        assert in_cache == (v.untyped_storage().data_ptr() in storages)
        attended.append(in_cache)
        return real_attend(q, k, v, *rest)

    monkeypatch.setattr(block_module, "attend", spy)
    with CatsOfCache(storages) as mode:
        for _ in range(3):
            sampler.next_chunk(audio)
    assert mode.hits == []  # neither a pass nor an eviction copies the cache through cat or clone
    passes = 3 * (2 + 1)  # 2 denoising steps and the context pass per chunk
    assert sum(attended) == passes * len(sampler.cache)  # every cached layer attends a buffer view
    assert len(attended) == passes * (len(sampler.cache) + 4)  # + audio cross-attention of 4 blocks
    assert [b.data_ptr() for b in sampler.cache.buffers()] == pointers
    assert sampler.cache.allocated_bytes() == size and sampler.cache.evicted == evicted + 3 * 2


def test_audio_key_value_projections_run_once_per_chunk(tiny_model: DualForceModel) -> None:
    steps, chunks = 3, 3
    counts: dict[str, int] = {}
    layers = [
        (f"{tower}.{i}.{proj}", getattr(blk.audio_attn, proj))
        for tower in ("video", "struct")
        for i, blk in enumerate(getattr(tiny_model, tower).blocks)
        for proj in ("k", "v")
    ]
    for name, linear in layers:
        linear.register_forward_hook(lambda *_, name=name: counts.__setitem__(name, counts.get(name, 0) + 1))

    def run(**cfg: Any) -> dict[str, int]:
        counts.clear()
        inference = InferenceConfig(steps=steps, cache_frames=2, **cfg)
        sampler = ChunkedSampler(tiny_model, inference, DiffusionConfig())
        audio = track(tiny_model, 1 + 2 * chunks)
        sampler.start(*reference(tiny_model), audio)
        for _ in range(chunks):
            sampler.next_chunk(audio)
        return dict(counts)

    # The reference's pass, then one per chunk: its denoising steps and context pass hear one slice.
    assert run() == {name: 1 + chunks for name, _ in layers}
    # Guidance adds a batch row, not a projection; the drop is a mask over the same K/V.
    assert run(audio_guidance=2.0) == {name: 1 + chunks for name, _ in layers}
    # Pipelined passes hear a new slice almost every tick (the chunks in flight move): recomputed then.
    passes = 1 + (chunks - 1 + steps) + chunks  # reference, ticks, context passes
    pipelined = set(run(pipelined=True, pipeline_lag=1).values())
    assert len(pipelined) == 1 and 1 + chunks < pipelined.pop() <= passes
