"""The chunked diffusion-forcing sampler: the reference sinks into the cache, then chunk after chunk.

Every pass is a tick of `PipelinedSchedule`: the sequential sampler is the schedule with lag = steps (one
chunk in flight, `steps` Euler steps), the pipelined one has several chunks in flight at increasing σ,
each pass moving all of them one step (block-causal attention lets a newer chunk read the older, less
noisy ones in the same pass). A chunk that reaches σ = 0 is re-run once at `context_sigma` with the
cache in write mode, which stores its clean K/V for every later chunk.

Two ways to get earlier chunks' K/V, same numbers:
* `MultiModalKVCache` (default): pre-allocated, written once per finished chunk; every pass writes its
  own K/V into the buffers' free tail and attends views of them, and a chunk's audio K/V are computed
  on its first step and reused by the later ones.
* `no_kv_cache=True`, the reference: before every pass, rebuild the context from scratch by replaying
  the reference and every finished chunk's write pass into a plain concatenating cache, trimmed by the
  same window rule. The window decides what a chunk attended to when it was written, so only a replay
  from the start reproduces it after eviction; this path costs O(chunks²) and exists to check the cache.

Each pass hands the model only the audio its frames can hear (`DualForceModel.audio_span`) with that
slice's global offset, so a pass costs the same at minute ten as at second one.

Noise is drawn per chunk from a generator seeded by (seed, chunk), so results do not depend on the
order passes run in. Audio classifier-free guidance runs the dropped-audio branch as a second batch
row, with its own cache rows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
from torch import Tensor

from dualforce_core.errors import UserError
from dualforce_core.inference.config import InferenceConfig
from dualforce_core.inference.kv_cache import MultiModalKVCache, trim_window
from dualforce_core.models import DualForceModel, DualForceOutput, KVCache
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.schedulers.flow_match import (
    STRUCT_FRAME_DIM,
    VIDEO_FRAME_DIM,
    add_noise,
    euler_step,
    modality_shift,
)
from dualforce_core.schedulers.schedules import PipelinedSchedule, PipelineTick


@dataclass
class AudioTrack:
    """HuBERT tokens [T, L, D] received so far; `tokens[0]` is global token `offset` (50 Hz from video
    frame 0). `ended` once the speech is over: passes then take whatever is there (plus the null token)."""

    tokens: Tensor
    offset: int = 0
    ended: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.tokens.shape[0]

    def append(self, more: Tensor) -> None:
        self.tokens = torch.cat([self.tokens, more.to(self.tokens)])

    def drop_before(self, index: int) -> None:
        """Forget tokens no pass will read again (a live stream must not hold the whole talk)."""
        cut = min(max(0, index - self.offset), self.tokens.shape[0])
        self.tokens, self.offset = self.tokens[cut:].clone(), self.offset + cut

    def slice(self, start: int, end: int) -> tuple[Tensor, int]:
        """[1, n, L, D] tokens of [start, end) clipped to what is held, and the global index of the first."""
        if start < self.offset:
            raise UserError(
                f"audio token {start} was already dropped (the track now starts at {self.offset})"
            )
        lo = min(start, self.end)
        hi = min(max(end, lo), self.end)
        return self.tokens[lo - self.offset : hi - self.offset][None], start


@dataclass
class SampledChunk:
    """One finished chunk (float32): clean normalised latents [1, 16, F, h, w], structure tokens [1, F, K, D]."""

    index: int  # 0 = the first chunk after the reference
    first_frame: int  # absolute latent frame of video[:, :, 0]
    video: Tensor
    struct: Tensor


class ChunkedSampler:
    def __init__(
        self,
        model: DualForceModel,
        inference: InferenceConfig,
        diffusion: DiffusionConfig,
        no_kv_cache: bool = False,
    ) -> None:
        self.model = model
        self.cfg = inference
        self.diffusion = diffusion
        self.no_kv_cache = no_kv_cache
        self.chunk_frames = self.model.config.chunk_frames
        lag = inference.pipeline_lag if inference.pipelined else inference.steps
        if inference.pipelined and not 1 <= lag <= inference.steps:
            raise UserError(f"inference.pipeline_lag must be in [1, steps={inference.steps}], got {lag}")
        self.schedule_v = PipelinedSchedule(inference.steps, lag, modality_shift(diffusion, "video"))
        self.schedule_s = PipelinedSchedule(inference.steps, lag, modality_shift(diffusion, "struct"))
        self.guided = inference.audio_guidance != 1.0
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.cache = MultiModalKVCache(
            inference.cache_frames, self.chunk_frames * self.schedule_v.max_in_flight
        )
        self.total_chunks: int | None = None
        self._tick = 0
        self._in_flight: dict[int, tuple[Tensor, Tensor]] = {}
        self._done: deque[SampledChunk] = deque()
        self._returned = 0
        self._reference: tuple[Tensor, Tensor, Tensor, int] | None = None
        self._history: list[SampledChunk] = []

    # ------------------------------------------------------------------------------------- public

    def chunk_first_frame(self, chunk: int) -> int:
        return 1 + chunk * self.chunk_frames

    @torch.no_grad()
    def start(self, ref_video: Tensor, ref_struct: Tensor, audio: AudioTrack) -> None:
        """Sink the reference (latent frame 0, σ = 0 in both modalities) into the cache."""
        expected = (1, self.model.config.video_in_channels, 1)
        if tuple(ref_video.shape[:3]) != expected or ref_struct.shape[:2] != (1, 1):
            raise UserError(
                f"reference must be video [1, 16, 1, h, w] and struct [1, 1, K, D], got "
                f"{list(ref_video.shape)} and {list(ref_struct.shape)}"
            )
        ref_video = ref_video.to(self.device, torch.float32)
        ref_struct = ref_struct.to(self.device, torch.float32)
        a0, a1 = self.model.audio_span(0, 1)
        tokens, offset = audio.slice(a0, a1)
        self._reference = (ref_video, ref_struct, tokens, offset)
        if not self.no_kv_cache:
            with self.cache.writing(1):
                self._forward(
                    ref_video, ref_struct, self._zeros(1), self._zeros(1), 0, tokens, offset, self.cache
                )

    def tokens_needed(self) -> int:
        """Global audio token count the next `next_chunk` needs (before the track has ended)."""
        if self._done:
            return 0
        steps, lag = self.schedule_v.steps, self.schedule_v.lag
        finishing_tick = self._returned * lag + steps - 1
        newest = finishing_tick // lag
        if self.total_chunks is not None:
            newest = min(newest, self.total_chunks - 1)
        return self.model.audio_span(self.chunk_first_frame(newest), self.chunk_frames)[1]

    @torch.no_grad()
    def next_chunk(self, audio: AudioTrack) -> SampledChunk:
        if self._reference is None:
            raise UserError("call start() with the reference before sampling chunks")
        if self.total_chunks is not None and self._returned >= self.total_chunks:
            raise UserError(f"all {self.total_chunks} chunks are already sampled")
        while not self._done:
            self._run_tick(audio)
        self._returned += 1
        return self._done.popleft()

    # ----------------------------------------------------------------------------------- internals

    def _zeros(self, frames: int) -> Tensor:
        return torch.zeros(1, frames, device=self.device)

    def _noise(self, chunk: int, stream: int, *likes: Tensor) -> list[Tensor]:
        """Gaussian noise shaped like `likes`, drawn on the CPU from a generator of (seed, chunk, stream)."""
        g = torch.Generator().manual_seed(((self.cfg.seed * 1_000_003 + chunk) * 2 + stream) % (1 << 63))
        return [torch.randn(x.shape, generator=g).to(x.device, x.dtype) for x in likes]

    def _fresh_chunk(self, chunk: int) -> tuple[Tensor, Tensor]:
        assert self._reference is not None
        ref_v, ref_s = self._reference[:2]
        video, struct = self._noise(
            chunk,
            0,
            ref_v.new_empty(1, ref_v.shape[1], self.chunk_frames, *ref_v.shape[3:]),
            ref_s.new_empty(1, self.chunk_frames, *ref_s.shape[2:]),
        )
        return video, struct

    def _run_tick(self, audio: AudioTrack) -> None:
        tick_v = self.schedule_v.tick(self._tick, self.total_chunks)
        tick_s = self.schedule_s.tick(self._tick, self.total_chunks)
        self._tick += 1
        if tick_v.entering is not None:
            self._in_flight[tick_v.entering] = self._fresh_chunk(tick_v.entering)
        first = self.chunk_first_frame(tick_v.chunks[0])
        frames = len(tick_v.chunks) * self.chunk_frames
        x_v = torch.cat([self._in_flight[c][0] for c in tick_v.chunks], dim=VIDEO_FRAME_DIM)
        x_s = torch.cat([self._in_flight[c][1] for c in tick_v.chunks], dim=STRUCT_FRAME_DIM)
        sig_v, next_v = self._frame_sigmas(tick_v)
        sig_s, next_s = self._frame_sigmas(tick_s)
        tokens, offset = audio.slice(*self.model.audio_span(first, frames))
        vel_v, vel_s = self._velocity(x_v, x_s, sig_v, sig_s, first, tokens, offset, audio)
        x_v = euler_step(x_v, vel_v.float(), sig_v, next_v, VIDEO_FRAME_DIM)
        x_s = euler_step(x_s, vel_s.float(), sig_s, next_s, STRUCT_FRAME_DIM)
        for j, chunk in enumerate(tick_v.chunks):
            part = slice(j * self.chunk_frames, (j + 1) * self.chunk_frames)
            self._in_flight[chunk] = (x_v[:, :, part], x_s[:, part])
        if tick_v.finished is not None:
            video, struct = self._in_flight.pop(tick_v.finished)
            done = SampledChunk(tick_v.finished, self.chunk_first_frame(tick_v.finished), video, struct)
            if self.no_kv_cache:
                self._history.append(done)
            else:
                with self.cache.writing(self.chunk_frames):
                    self._context_pass(done, audio, self.cache)
            self._done.append(done)

    def _frame_sigmas(self, tick: PipelineTick) -> tuple[Tensor, Tensor]:
        sigma, sigma_next = tick.frame_sigmas(self.chunk_frames)
        return sigma[None].to(self.device), sigma_next[None].to(self.device)

    def _context_pass(
        self, chunk: SampledChunk, audio: AudioTrack, cache: MultiModalKVCache | KVCache
    ) -> None:
        """Re-run a finished chunk at `context_sigma` so the cache holds its (nearly) clean K/V."""
        sigma = self.diffusion.context_sigma
        video, struct = chunk.video, chunk.struct
        level = torch.full((1, self.chunk_frames), sigma, device=self.device)
        if sigma > 0:
            noise_v, noise_s = self._noise(chunk.index, 1, video, struct)
            video = add_noise(video, noise_v, level, VIDEO_FRAME_DIM)
            struct = add_noise(struct, noise_s, level, STRUCT_FRAME_DIM)
        tokens, offset = audio.slice(*self.model.audio_span(chunk.first_frame, self.chunk_frames))
        self._forward(video, struct, level, level, chunk.first_frame, tokens, offset, cache)

    def _replayed_cache(self, audio: AudioTrack) -> KVCache:
        """The reference path: the window's context rebuilt from scratch, chunk by chunk."""
        assert self._reference is not None
        ref_v, ref_s, tokens, offset = self._reference
        cache = KVCache()
        cache.write = True
        self._forward(ref_v, ref_s, self._zeros(1), self._zeros(1), 0, tokens, offset, cache)
        sink = {key: k.shape[1] for key, (k, _) in cache.store.items()}
        for chunk in self._history:
            self._context_pass(chunk, audio, cache)
            trim_window(cache.store, sink, self.cfg.cache_frames)
        cache.write = False
        return cache

    def _velocity(
        self,
        x_v: Tensor,
        x_s: Tensor,
        sig_v: Tensor,
        sig_s: Tensor,
        first: int,
        tokens: Tensor,
        offset: int,
        audio: AudioTrack,
    ) -> tuple[Tensor, Tensor]:
        cache = self._replayed_cache(audio) if self.no_kv_cache else self.cache
        out = self._forward(x_v, x_s, sig_v, sig_s, first, tokens, offset, cache)
        if not self.guided:
            return out.video, out.struct
        scale = self.cfg.audio_guidance
        v_cond, v_drop = out.video.float().unbind(0)
        s_cond, s_drop = out.struct.float().unbind(0)
        return (v_drop + scale * (v_cond - v_drop))[None], (s_drop + scale * (s_cond - s_drop))[None]

    def _forward(
        self,
        video: Tensor,
        struct: Tensor,
        sig_v: Tensor,
        sig_s: Tensor,
        first: int,
        tokens: Tensor,
        offset: int,
        cache: MultiModalKVCache | KVCache,
    ) -> DualForceOutput:
        rows = 2 if self.guided else 1
        drop = torch.tensor([False, True], device=self.device) if self.guided else None
        return self.model(
            video=video.to(self.dtype).expand(rows, *video.shape[1:]),
            struct=struct.to(self.dtype).expand(rows, *struct.shape[1:]),
            sigma_video=sig_v.expand(rows, -1),
            sigma_struct=sig_s.expand(rows, -1),
            audio=tokens.to(self.device, self.dtype).expand(rows, *tokens.shape[1:]),
            audio_drop=drop,
            frame_offset=first,
            audio_offset=offset,
            cache=cache,
            reference=self._reference_latent(rows),
        )

    def _reference_latent(self, rows: int) -> Tensor | None:
        """The portrait's clean latent, which a `reference_concat` model reads beside every frame."""
        if not self.model.config.reference_concat or self._reference is None:
            return None
        ref_v = self._reference[0].to(self.dtype)
        return ref_v.expand(rows, *ref_v.shape[1:])
