"""Inference σ schedules for chunked streaming: what noise level each chunk's frames are at, step by step.

Contract with the streaming sampler. Latent frame 0 is the reference (σ = 0, always cached); generated
frames come in chunks of `chunk_frames`, chunk 0 being the first after the reference.

* Sequential: `chunk_sigma_schedule(steps, shift, chunk_frames)[i]` is the per-frame σ of the chunk
  being denoised before step i; step i moves it from row i to row i + 1 with `euler_step`. The last row
  is 0; the sampler then re-runs the clean chunk at `DiffusionConfig.context_sigma` to write its K/V.
* Pipelined: `PipelinedSchedule(steps, lag, shift)` keeps several chunks in flight; chunk c starts at
  tick c·lag and takes one step per tick, so older chunks are always less noisy than newer ones (σ rises
  with the chunk index inside a tick, as block-causal attention expects). Each tick is one forward pass
  over the in-flight chunks (oldest first) on top of the cache. `lag = steps` is the sequential sampler.

σ values are per modality: build one schedule per modality with that modality's shift (the chunk and
step structure is the same for both).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from dualforce_core.errors import UserError
from dualforce_core.schedulers.flow_match import shift_sigma


def sigma_schedule(steps: int, shift: float = 1.0) -> Tensor:
    """`steps + 1` float32 σ values from exactly 1 down to exactly 0, evenly spaced before the shift."""
    if steps < 1:
        raise UserError(f"the number of sampling steps must be >= 1, got {steps}")
    return shift_sigma(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift).float()


def chunk_sigma_schedule(steps: int, shift: float, chunk_frames: int) -> Tensor:
    """[steps + 1, chunk_frames]: per-step σ of each frame of the chunk being denoised (all move together)."""
    if chunk_frames < 1:
        raise UserError(f"chunk_frames must be >= 1, got {chunk_frames}")
    return sigma_schedule(steps, shift)[:, None].expand(-1, chunk_frames).contiguous()


@dataclass(frozen=True)
class PipelineTick:
    """One forward pass of the pipelined sampler.

    `chunks[j]` takes denoising step `step_index[j]`, moving from `sigma[j]` to `sigma_next[j]`;
    chunks are listed oldest first, so `sigma` is increasing. `entering` starts from pure noise in this
    tick; `finished` reaches σ = 0 at the end of it and goes to the cache.
    """

    index: int
    chunks: tuple[int, ...]
    step_index: tuple[int, ...]
    sigma: Tensor
    sigma_next: Tensor
    entering: int | None
    finished: int | None

    def frame_sigmas(self, chunk_frames: int) -> tuple[Tensor, Tensor]:
        """Per-frame (σ, σ') over the in-flight frames in time order, for a [B, F] σ tensor of the model."""
        return (
            self.sigma.repeat_interleave(chunk_frames),
            self.sigma_next.repeat_interleave(chunk_frames),
        )


class PipelinedSchedule:
    """Several chunks in flight at staggered σ: chunk c runs its step k at tick c·lag + k."""

    def __init__(self, steps: int, lag: int = 1, shift: float = 1.0) -> None:
        self.sigmas = sigma_schedule(steps, shift)
        if not 1 <= lag <= steps:
            raise UserError(f"pipeline lag must be between 1 and steps ({steps}), got {lag}")
        self.steps = steps
        self.lag = lag

    @property
    def max_in_flight(self) -> int:
        """How many chunks a tick can hold at most: the sampler sizes its working window with it."""
        return math.ceil(self.steps / self.lag)

    def num_ticks(self, num_chunks: int) -> int:
        return 0 if num_chunks < 1 else (num_chunks - 1) * self.lag + self.steps

    def tick(self, index: int, num_chunks: int | None = None) -> PipelineTick:
        """The tick `index`; `num_chunks=None` is an unbounded stream (new chunks keep entering)."""
        if index < 0:
            raise UserError(f"tick index must be >= 0, got {index}")
        if num_chunks is not None and index >= self.num_ticks(num_chunks):
            raise UserError(
                f"{num_chunks} chunks take {self.num_ticks(num_chunks)} ticks; tick {index} is past the end"
            )
        newest = index // self.lag
        if num_chunks is not None:
            newest = min(newest, num_chunks - 1)
        oldest = max(0, (index - self.steps) // self.lag + 1)
        chunks = tuple(range(oldest, newest + 1))
        step_index = tuple(index - c * self.lag for c in chunks)
        position = torch.tensor(step_index, dtype=torch.long)
        return PipelineTick(
            index=index,
            chunks=chunks,
            step_index=step_index,
            sigma=self.sigmas[position],
            sigma_next=self.sigmas[position + 1],
            entering=next((c for c, k in zip(chunks, step_index) if k == 0), None),
            finished=next((c for c, k in zip(chunks, step_index) if k == self.steps - 1), None),
        )

    def ticks(self, num_chunks: int) -> Iterator[PipelineTick]:
        for index in range(self.num_ticks(num_chunks)):
            yield self.tick(index, num_chunks)
