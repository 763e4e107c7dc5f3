"""The streaming K/V cache: a permanent reference sink plus a rolling window of finished latent frames.

One entry per cached attention layer (both towers' self-attention and both bridge directions, named by
the model's `cache_key`). Each entry is one pre-allocated buffer `[B, sink + (window + pass) · t, H, D]`
(`t` tokens per latent frame): the reference frame's keys first, then up to `cache_frames` finished
frames in time order, then a free tail for the frames of one pass. A pass writes its fresh K/V into the
tail and attends a view of [sink ; window ; tail]: no pass allocates or concatenates, and nothing grows
after the first write, so memory is bounded whatever the length of the audio.

Positions stay absolute: keys are stored with RoPE already applied at their absolute latent-frame index,
so evicting old frames changes nothing about the ones that remain (attention only sees relative
phases). Cached keys are all visible to the current chunk, so their order inside the buffer never
needs a mask; keeping them in time order makes cached and recomputed sums add up in the same order.

Audio cross-attention K/V depend only on the audio slice a pass hears, which stays the same over all the
steps of a chunk: each layer keeps the K/V of its latest slice and recomputes them when it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


class MultiModalKVCache:
    """Implements the model's `AttentionCache` protocol for inference (no gradients flow through it).

    The sampler brackets a finished chunk's context pass in `writing`: the first write is the reference
    (the sink, never evicted); every later one commits `frames` latent frames, then evicts the oldest
    rolling frames beyond `cache_frames`. `max_pass_frames` bounds the frames one pass brings (the
    chunks in flight), which sizes the free tail.
    """

    def __init__(self, cache_frames: int, max_pass_frames: int) -> None:
        if cache_frames < 1 or max_pass_frames < 1:
            raise ValueError("cache_frames and max_pass_frames must be >= 1")
        self.cache_frames = cache_frames
        self.max_pass_frames = max_pass_frames
        self.write = False
        self.frames = 0  # rolling latent frames currently held (after the sink)
        self.sink_frames = 0
        self.evicted = 0  # rolling frames dropped so far
        self._writing_frames = 0
        self._k: dict[str, Tensor] = {}
        self._v: dict[str, Tensor] = {}
        self._per_frame: dict[str, int] = {}
        self._sink_tokens: dict[str, int] = {}
        self._context: dict[str, tuple[Hashable, Tensor, Tensor]] = {}

    @contextmanager
    def writing(self, frames: int) -> Iterator[None]:
        """While inside, every layer's fresh K/V of `frames` latent frames are kept; then evict."""
        if frames > self.max_pass_frames and self.sink_frames:
            raise ValueError(f"cannot write {frames} frames at once (max {self.max_pass_frames})")
        self.write, self._writing_frames = True, frames
        try:
            yield
        finally:
            self.write = False
        if not self.sink_frames:
            self.sink_frames = frames
        else:
            self.frames += frames
            self._evict()

    def extend(self, key: str, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Copy `k`, `v` into the free tail of the layer's buffer; views of [cached ; k] and [cached ; v].

        The views alias the buffer: they hold until the next pass overwrites the tail or an eviction
        shifts the window, which is all a layer needs.
        """
        if key not in self._k:
            if not self.write:
                return k, v  # nothing cached yet: the pass sees only itself
            self._allocate(key, k, v)
        per_frame = self._per_frame[key]
        if self.write and k.shape[1] != self._writing_frames * per_frame:
            raise ValueError(
                f"{key}: {k.shape[1]} tokens are not {self._writing_frames} frames of {per_frame} tokens"
            )
        buffer_k, buffer_v = self._k[key], self._v[key]
        if k.shape[1] > self.max_pass_frames * per_frame or k.shape[0] != buffer_k.shape[0]:
            raise ValueError(
                f"{key}: a pass of {list(k.shape)} does not fit the cache's free tail "
                f"({self.max_pass_frames * per_frame} tokens, batch {buffer_k.shape[0]})"
            )
        start = self._sink_tokens[key] + self.frames * per_frame if self.sink_frames else 0
        end = start + k.shape[1]
        buffer_k[:, start:end].copy_(k.detach())
        buffer_v[:, start:end].copy_(v.detach())
        return buffer_k[:, :end], buffer_v[:, :end]

    def context_kv(
        self, key: str, window: Hashable, compute: Callable[[], tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor]:
        """The K/V `compute` gave for `window` the last time this layer heard it; recomputed on a change."""
        held = self._context.get(key)
        if held is None or held[0] != window:
            k, v = compute()
            held = self._context[key] = (window, k.detach(), v.detach())
        return held[1], held[2]

    def _allocate(self, key: str, k: Tensor, v: Tensor) -> None:
        if self.sink_frames:
            raise ValueError(f"{key}: first write after the reference; every layer must see the sink")
        frames = self._writing_frames
        if k.shape[1] % frames:
            raise ValueError(f"{key}: {k.shape[1]} tokens do not split into {frames} frames")
        per_frame = k.shape[1] // frames
        capacity = k.shape[1] + (self.cache_frames + self.max_pass_frames) * per_frame
        shape = (k.shape[0], capacity, *k.shape[2:])
        self._k[key] = k.new_empty(shape)
        self._v[key] = v.new_empty(shape)
        self._per_frame[key], self._sink_tokens[key] = per_frame, k.shape[1]

    def _evict(self) -> None:
        drop = self.frames - self.cache_frames
        if drop <= 0:
            return
        for key in self._k:
            sink, t = self._sink_tokens[key], self._per_frame[key]
            step = drop * t
            for buffer in (self._k[key], self._v[key]):
                # Shift the kept frames forward in pieces no longer than the shift: no piece overlaps
                # its own destination, so no temporary is needed.
                for dst in range(sink, sink + self.cache_frames * t, step):
                    n = min(step, sink + self.cache_frames * t - dst)
                    buffer[:, dst : dst + n].copy_(buffer[:, dst + step : dst + step + n])
        self.frames = self.cache_frames
        self.evicted += drop

    def allocated_bytes(self) -> int:
        """Bytes held by the K/V buffers (what must stay constant however long the stream runs)."""
        return sum(t.numel() * t.element_size() for t in (*self._k.values(), *self._v.values()))

    def buffers(self) -> list[Tensor]:
        return [*self._k.values(), *self._v.values()]

    def __len__(self) -> int:
        return len(self._k)


def trim_window(store: dict[str, tuple[Tensor, Tensor]], sink_tokens: dict[str, int], keep: int) -> None:
    """The same window rule on a plain concatenating cache (the reference path's `KVCache.store`): keep
    each entry's sink (one latent frame, so also its tokens per frame) and its last `keep` frames."""
    for key, (k, v) in store.items():
        per_frame = sink_tokens[key]
        frames = (k.shape[1] - per_frame) // per_frame
        if frames > keep:
            start = per_frame * (1 + frames - keep)
            store[key] = (
                torch.cat([k[:, :per_frame], k[:, start:]], 1),
                torch.cat([v[:, :per_frame], v[:, start:]], 1),
            )
