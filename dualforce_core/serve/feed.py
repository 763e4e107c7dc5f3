"""What a session's model hears, and when: client audio first, silence when the client is quiet.

`AudioInbox` holds the client's audio (bounded: overflow is refused loudly, never dropped). `LiveFeed`
is the iterator `StreamingGenerator.stream` reads: it hands over queued client audio at once, and when
there is none and the video has caught up with the wall clock it hands over silence, one 40 ms frame's
worth at a time, so video keeps flowing at 25 fps and the face idles instead of freezing. Silence comes
in whole frames, so a stream that ends has ceil(client samples / 640) + idle frames frames. `Timeline`
records which samples came from the client and when they arrived, for latency and for the audio
WebRTC plays back next to the video.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from dualforce_core.errors import UserError
from dualforce_core.timeline import SAMPLE_RATE, SAMPLES_PER_FRAME

FRAME_SAMPLES = SAMPLES_PER_FRAME  # 640: the audio under one video frame


class Interrupted(Exception):
    """The client asked to drop what is queued: the running stream stops and a fresh one starts."""


class Closed(Exception):
    """The session is over (client gone, deleted, timed out or shut down)."""


class AudioInbox:
    """Client audio waiting for the model, with the time each piece arrived; thread-safe."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.cond = threading.Condition()
        self.pieces: deque[tuple[np.ndarray, float]] = deque()
        self.queued = 0
        self.ended = False
        self.closed = False
        self.epoch = 0  # bumped by every interrupt

    def push(self, samples: np.ndarray, arrived: float | None = None) -> None:
        with self.cond:
            if self.ended or self.closed:
                raise UserError("audio after end: the session takes no more audio")
            if self.queued + len(samples) > self.max_samples:
                raise UserError(
                    f"audio queue full: {self.queued / SAMPLE_RATE:.1f} s waiting, limit "
                    f"{self.max_samples / SAMPLE_RATE:.1f} s; this message ({len(samples)} samples) was refused. "
                    "Send audio no faster than the video is generated"
                )
            if len(samples):
                self.pieces.append((samples, time.monotonic() if arrived is None else arrived))
                self.queued += len(samples)
                self.cond.notify_all()

    def end(self) -> None:
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def interrupt(self) -> None:
        with self.cond:
            self.pieces.clear()
            self.queued = 0
            self.epoch += 1
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def take(self, limit: int) -> list[tuple[np.ndarray, float]]:
        """Up to `limit` queued samples, split at `limit` (caller holds `cond`)."""
        out, n = [], 0
        while self.pieces and n < limit:
            samples, arrived = self.pieces.popleft()
            if n + len(samples) > limit:
                self.pieces.appendleft((samples[limit - n :], arrived))
                samples = samples[: limit - n]
            out.append((samples, arrived))
            n += len(samples)
        self.queued -= n
        return out


@dataclass
class Segment:
    start: int
    end: int
    arrived: float
    from_client: bool


class Timeline:
    """Everything one stream was fed, in order: segments (for latency) and the samples (for playback).

    Both are trimmed as frames leave, so a long session holds only what is in flight."""

    def __init__(self) -> None:
        self.segments: deque[Segment] = deque()
        self.samples = np.zeros(0, np.float32)
        self.offset = 0  # global index of samples[0]
        self.fed = 0
        self.client_samples = 0
        self.idle_samples = 0

    def add(self, samples: np.ndarray, arrived: float, from_client: bool) -> None:
        self.segments.append(Segment(self.fed, self.fed + len(samples), arrived, from_client))
        self.samples = np.concatenate([self.samples, samples])
        self.fed += len(samples)
        if from_client:
            self.client_samples += len(samples)
        else:
            self.idle_samples += len(samples)

    def frame(self, frame: int) -> tuple[Segment, np.ndarray]:
        """Where video frame `frame`'s audio came from (the segment of its last sample) and its 640 samples
        (zero-padded past the end); frames are asked for in order, so everything before is forgotten."""
        last = min((frame + 1) * FRAME_SAMPLES, self.fed) - 1
        while len(self.segments) > 1 and self.segments[0].end <= last:
            self.segments.popleft()
        lo = frame * FRAME_SAMPLES - self.offset
        audio = np.zeros(FRAME_SAMPLES, np.float32)
        piece = self.samples[max(lo, 0) : max(lo + FRAME_SAMPLES, 0)]
        audio[: len(piece)] = piece
        drop = max(0, min(lo + FRAME_SAMPLES, len(self.samples)))
        self.samples, self.offset = self.samples[drop:], self.offset + drop
        return self.segments[0], audio


class LiveFeed:
    """The audio iterator of one stream; `pause`/`resume` give the compute turn back while it waits."""

    def __init__(
        self,
        inbox: AudioInbox,
        timeline: Timeline,
        piece_samples: int,
        grace_s: float,
        max_lag_s: float,
        pause: Callable[[], None],
        resume: Callable[[], None],
    ) -> None:
        self.inbox, self.timeline = inbox, timeline
        self.piece = max(FRAME_SAMPLES, piece_samples - piece_samples % FRAME_SAMPLES)
        self.grace = int(grace_s * SAMPLE_RATE)
        self.max_lag = int(max_lag_s * SAMPLE_RATE)
        self.pause, self.resume = pause, resume
        self.epoch = inbox.epoch
        self.t0 = time.monotonic()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            self.pause()
            try:
                piece = self._next()
            finally:
                self.resume()
            if piece is None:
                return
            yield piece

    def _next(self) -> np.ndarray | None:
        inbox = self.inbox
        with inbox.cond:
            while True:
                if inbox.closed:
                    raise Closed
                if inbox.epoch != self.epoch:
                    raise Interrupted
                if inbox.pieces:
                    parts = inbox.take(self.piece)
                    for samples, arrived in parts:
                        self.timeline.add(samples, arrived, from_client=True)
                    return np.concatenate([s for s, _ in parts])
                if inbox.ended:
                    return None
                now = time.monotonic()
                behind = int((now - self.t0) * SAMPLE_RATE) - self.timeline.fed
                if behind > self.max_lag:  # overloaded: let the clock slip rather than pile up silence
                    self.t0 += (behind - self.max_lag) / SAMPLE_RATE
                    behind = self.max_lag
                if behind >= FRAME_SAMPLES + self.grace:
                    n = min(self.piece, (behind - self.grace) // FRAME_SAMPLES * FRAME_SAMPLES)
                    silence = np.zeros(n, np.float32)
                    self.timeline.add(silence, now, from_client=False)
                    return silence
                inbox.cond.wait((FRAME_SAMPLES + self.grace - behind) / SAMPLE_RATE + 1e-3)
