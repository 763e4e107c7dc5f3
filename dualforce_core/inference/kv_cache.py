"""The streaming K/V cache: a permanent reference sink plus a rolling window of finished latent frames.

One entry per cached attention layer (both towers' self-attention and both bridge directions, named by
the model's `cache_key`). Each entry is one pre-allocated buffer `[B, sink + (window + chunk) · t, H, D]`
(`t` tokens per latent frame): the reference frame's keys first, then up to `cache_frames` finished
frames in time order, then room for the chunk being written. Nothing grows after the first write, so
memory is bounded whatever the length of the audio.

Positions stay absolute: keys are stored with RoPE already applied at their absolute latent-frame index,
so evicting old frames changes nothing about the ones that remain (attention only sees relative
phases). Cached keys are all visible to the current chunk, so their order inside the buffer never
needs a mask; keeping them in time order makes cached and recomputed sums add up in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


class MultiModalKVCache:
    """Implements the model's `AttentionCache` protocol; the sampler brackets cache writes in `writing`.

    The first write is the reference (the sink, never evicted); every later write appends `frames`
    latent frames and then evicts the oldest rolling frames beyond `cache_frames`.
    """

    def __init__(self, cache_frames: int, max_write_frames: int) -> None:
        if cache_frames < 1 or max_write_frames < 1:
            raise ValueError("cache_frames and max_write_frames must be >= 1")
        self.cache_frames = cache_frames
        self.max_write_frames = max_write_frames
        self.write = False
        self.frames = 0  # rolling latent frames currently held (after the sink)
        self.sink_frames = 0
        self.evicted = 0  # rolling frames dropped so far
        self._writing_frames = 0
        self._k: dict[str, Tensor] = {}
        self._v: dict[str, Tensor] = {}
        self._per_frame: dict[str, int] = {}
        self._sink_tokens: dict[str, int] = {}

    @contextmanager
    def writing(self, frames: int) -> Iterator[None]:
        """While inside, every layer's fresh K/V of `frames` latent frames is appended; then evict."""
        if frames > self.max_write_frames and self.sink_frames:
            raise ValueError(f"cannot write {frames} frames at once (max {self.max_write_frames})")
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

    def get(self, key: str) -> tuple[Tensor, Tensor] | None:
        if key not in self._k:
            return None
        end = self._sink_tokens[key] + self.frames * self._per_frame[key]
        return self._k[key][:, :end], self._v[key][:, :end]

    def put(self, key: str, k: Tensor, v: Tensor) -> None:
        frames = self._writing_frames
        if k.shape[1] % frames:
            raise ValueError(f"{key}: {k.shape[1]} tokens do not split into {frames} frames")
        per_frame = k.shape[1] // frames
        if key not in self._k:
            if self.sink_frames:
                raise ValueError(f"{key}: first write after the reference; every layer must see the sink")
            capacity = k.shape[1] + (self.cache_frames + self.max_write_frames) * per_frame
            shape = (k.shape[0], capacity, *k.shape[2:])
            self._k[key] = k.new_empty(shape)
            self._v[key] = v.new_empty(shape)
            self._per_frame[key], self._sink_tokens[key] = per_frame, k.shape[1]
        elif per_frame != self._per_frame[key]:
            raise ValueError(f"{key}: {per_frame} tokens per frame, the cache holds {self._per_frame[key]}")
        start = self._sink_tokens[key] + self.frames * per_frame if self.sink_frames else 0
        self._k[key][:, start : start + k.shape[1]].copy_(k.detach())
        self._v[key][:, start : start + v.shape[1]].copy_(v.detach())

    def _evict(self) -> None:
        drop = self.frames - self.cache_frames
        if drop <= 0:
            return
        for key in self._k:
            sink, t = self._sink_tokens[key], self._per_frame[key]
            keep = slice(sink + drop * t, sink + self.frames * t)
            for buffer in (self._k[key], self._v[key]):
                # Overlapping source and destination: copy through a temporary.
                buffer[:, sink : sink + self.cache_frames * t].copy_(buffer[:, keep].clone())
        self.frames = self.cache_frames
        self.evicted += drop

    def allocated_bytes(self) -> int:
        """Bytes held by the cache buffers (what must stay constant however long the stream runs)."""
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
