"""Attention masks, the backend switch and the K/V cache protocol.

Chunk rule: latent frame 0 (the reference portrait) is chunk 0 on its own, then every `chunk_frames`
latent frames form the next chunk. A token sees every token of its own and of earlier chunks. The
reference is alone so that, when streaming, it is the permanent sink of the cache and never has to be
regenerated with the first chunk of motion.

All backends compute the same function: `sdpa` with a boolean mask (built once per layout and cached),
`flex` with a `BlockMask`, `flash` with flash-attn, calling it once per query chunk on the prefix of
keys it may see (flash-attn has no arbitrary masks, so window masks go through `sdpa` there).
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from dualforce_core.errors import UserError

# A run's choice (`train.attention_backend`, `inference.attention_backend`), not the checkpoint's.
AttentionBackend = Literal["sdpa", "flex", "flash"]


def chunk_of_frame(frames: Tensor, chunk_frames: int) -> Tensor:
    """Chunk index of each absolute latent frame index (frame 0 alone in chunk 0)."""
    return torch.where(frames == 0, 0, (frames - 1).div(chunk_frames, rounding_mode="floor") + 1)


@dataclass(frozen=True)
class FrameSpan:
    """Tokens laid out frame-major: `frames` latent frames from `start`, `tokens_per_frame` each."""

    start: int
    frames: int
    tokens_per_frame: int

    @property
    def tokens(self) -> int:
        return self.frames * self.tokens_per_frame

    def token_chunks(self, chunk_frames: int, device: torch.device) -> Tensor:
        frames = torch.arange(self.start, self.start + self.frames, device=device)
        return chunk_of_frame(frames, chunk_frames).repeat_interleave(self.tokens_per_frame)


@dataclass(frozen=True)
class BlockCausal:
    """Query i sees key j iff chunk(key j) <= chunk(query i); `past` cached keys come first, all visible."""

    chunk_frames: int
    q: FrameSpan
    k: FrameSpan
    past: int = 0

    def with_past(self, past: int) -> BlockCausal:
        return replace(self, past=past)

    def first_q_chunk(self) -> int:
        return int(chunk_of_frame(torch.tensor(self.q.start), self.chunk_frames))

    def last_k_chunk(self) -> int:
        return int(chunk_of_frame(torch.tensor(self.k.start + self.k.frames - 1), self.chunk_frames))

    def is_full(self) -> bool:
        """Every query sees every key: no mask needed (e.g. one chunk attending to its cache)."""
        return self.last_k_chunk() <= self.first_q_chunk()

    def q_chunks(self, device: torch.device) -> Tensor:
        return self.q.token_chunks(self.chunk_frames, device)

    def k_chunks(self, device: torch.device) -> Tensor:
        own = self.k.token_chunks(self.chunk_frames, device)
        return torch.cat([torch.full((self.past,), -1, device=device, dtype=own.dtype), own])


@functools.lru_cache(maxsize=64)
def prefix_runs(mask: BlockCausal) -> list[tuple[int, int, int]]:
    """(query start, query end, visible key count) per query chunk: tokens are sorted by chunk, so
    each query chunk sees a prefix of the keys and needs no mask at all."""
    q, k = mask.q_chunks(torch.device("cpu")), mask.k_chunks(torch.device("cpu"))
    runs = []
    for chunk in torch.unique_consecutive(q).tolist():
        rows = (q == chunk).nonzero()
        runs.append((int(rows[0]), int(rows[-1]) + 1, int((k <= chunk).sum())))
    return runs


@dataclass(eq=False)
class DenseMask:
    """An arbitrary per-sample boolean mask [B, Sq, Sk] (audio windows); built once per forward."""

    mask: Tensor
    _flex: Any = field(default=None, repr=False)


Mask = BlockCausal | DenseMask | None


# Few entries: at paper scale one video self-attention mask is ~1 GB of bools (use `flex` there).
@functools.lru_cache(maxsize=8)
def _dense_block_causal(mask: BlockCausal, device: torch.device) -> Tensor:
    return mask.k_chunks(device)[None, :] <= mask.q_chunks(device)[:, None]


@functools.lru_cache(maxsize=64)
def _flex_block_causal(mask: BlockCausal, device: torch.device) -> Any:
    from torch.nn.attention.flex_attention import create_block_mask

    q_chunks, k_chunks = mask.q_chunks(device), mask.k_chunks(device)

    def mask_mod(b: Tensor, h: Tensor, qi: Tensor, ki: Tensor) -> Tensor:
        return k_chunks[ki] <= q_chunks[qi]

    return create_block_mask(mask_mod, None, None, q_chunks.numel(), k_chunks.numel(), device=device)


def _flex_dense(mask: DenseMask) -> Any:
    if mask._flex is None:
        from torch.nn.attention.flex_attention import create_block_mask

        dense = mask.mask

        def mask_mod(b: Tensor, h: Tensor, qi: Tensor, ki: Tensor) -> Tensor:
            return dense[b, qi, ki]

        batch, sq, sk = dense.shape
        mask._flex = create_block_mask(mask_mod, batch, None, sq, sk, device=dense.device)
    return mask._flex


def _sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Mask) -> Tensor:
    attn_mask = None
    if isinstance(mask, BlockCausal):
        attn_mask = _dense_block_causal(mask, q.device)
    elif isinstance(mask, DenseMask):
        attn_mask = mask.mask[:, None]
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask)
    return out.transpose(1, 2)


@functools.cache
def _flex_fn(device_type: str) -> Callable[..., Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    if device_type == "cpu":
        # Eager flex on CPU materialises the scores: fine for tests, which is all CPU flex is for.
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_attention
    return torch.compile(flex_attention, dynamic=False)


def _flex(q: Tensor, k: Tensor, v: Tensor, mask: Mask) -> Tensor:
    block_mask = None
    if isinstance(mask, BlockCausal):
        block_mask = _flex_block_causal(mask, q.device)
    elif isinstance(mask, DenseMask):
        block_mask = _flex_dense(mask)
    out = _flex_fn(q.device.type)(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), block_mask=block_mask
    )
    return out.transpose(1, 2)


def require_flash() -> ModuleType:
    try:
        return importlib.import_module("flash_attn")
    except ImportError:
        raise UserError(
            "attention backend 'flash' needs the flash-attn package (pip install 'dualforce[gpu]' on a CUDA "
            "machine); use attention_backend 'sdpa' or 'flex' instead"
        ) from None


def _flash(q: Tensor, k: Tensor, v: Tensor, mask: Mask) -> Tensor:
    if isinstance(mask, DenseMask):
        return _sdpa(q, k, v, mask)
    flash_attn_func = require_flash().flash_attn_func
    if mask is None:
        return flash_attn_func(q, k, v)
    return torch.cat([flash_attn_func(q[:, a:b], k[:, :n], v[:, :n]) for a, b, n in prefix_runs(mask)], dim=1)


BACKENDS: dict[AttentionBackend, Callable[[Tensor, Tensor, Tensor, Mask], Tensor]] = {
    "sdpa": _sdpa,
    "flex": _flex,
    "flash": _flash,
}


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Mask, backend: AttentionBackend) -> Tensor:
    """Multi-head attention on [B, S, heads, head_dim] tensors; a full `BlockCausal` drops its mask."""
    if isinstance(mask, BlockCausal) and mask.is_full():
        mask = None
    return BACKENDS[backend](q, k, v, mask)


class AttentionCache(Protocol):
    """What a layer needs from a streaming cache, under a per-layer key (the module path).

    `extend`: the layer's fresh K/V (RoPE applied) go in after the cached ones; it gets back K/V of
    [cached ; fresh] to attend. While `write` is on (a finished chunk's context pass) the fresh K/V
    stay for every later pass; otherwise the next pass replaces them. `context_kv`: K/V of a context
    that only depends on `window` (the audio slice a pass hears), computed by `compute` on a miss.
    """

    write: bool

    def extend(self, key: str, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...

    def context_kv(
        self, key: str, window: Hashable, compute: Callable[[], tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor]: ...


class KVCache:
    """The reference cache: per-layer K/V of finished chunks, concatenated in order.

    Cached keys are always visible (they belong to earlier chunks). A rolling window may drop
    tokens after the reference frame's from the front of each entry: positions are absolute, so the
    remaining keys keep their meaning. It copies the whole entry on every pass and recomputes every
    context; `MultiModalKVCache` is the streaming one.
    """

    def __init__(self) -> None:
        self.write = False
        self.store: dict[str, tuple[Tensor, Tensor]] = {}

    def extend(self, key: str, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        past = self.store.get(key)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=1), torch.cat([past[1], v], dim=1)
        if self.write:
            self.store[key] = (k.detach(), v.detach())
        return k, v

    def context_kv(
        self, key: str, window: Hashable, compute: Callable[[], tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor]:
        return compute()
