"""One live session: a thread runs `StreamingGenerator.stream` on a `LiveFeed`; frames go to a queue.

The thread holds the compute lane only while the generator computes: the feed gives the turn back while
it waits for audio, and the thread gives it back at every chunk, before encoding and queueing frames.
Frames wait in an asyncio queue for the transport (WebSocket or WebRTC) that sends them; a semaphore of
`max_frame_queue` credits bounds it, so a client that stops reading stalls only its own session, and is
cut off after `slow_client_s`. An interrupt bumps the inbox's epoch: queued audio is dropped, frames of
the old epoch are thrown away unsent, and a fresh stream starts from the portrait, on the same timeline.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from dualforce_core.errors import UserError
from dualforce_core.inference.generator import FrameChunk, StreamingGenerator, StreamStats
from dualforce_core.serve.codec import encode_jpeg
from dualforce_core.serve.config import ServeLimits
from dualforce_core.serve.feed import FRAME_SAMPLES, AudioInbox, Closed, Interrupted, LiveFeed, Timeline
from dualforce_core.serve.lane import ComputeLane
from dualforce_core.serve.metrics import ServeMetrics
from dualforce_core.timeline import SAMPLE_RATE

log = logging.getLogger(__name__)
LATENCY_HISTORY = 10_000  # frames whose latency the end event summarises


@dataclass
class OutFrame:
    epoch: int
    rgb: np.ndarray  # uint8 [H, W, 3]
    jpeg: bytes | None  # encoded only for the WebSocket transport
    audio: np.ndarray  # float32 [640]: the audio under this frame (WebRTC plays it back)
    arrived: float  # monotonic time the frame's last audio sample reached the server
    from_client: bool  # False: an idle frame, generated on silence


@dataclass
class StreamEnd:
    """The client's `end` was honoured: everything it sent has been turned into frames."""

    idle_frames: int
    audio_s: float


OutItem = OutFrame | StreamEnd | dict | None  # dict: a JSON event; None: closed after an error


@dataclass
class _Window:
    """Frames sent since the last stats event."""

    start: float = field(default_factory=time.monotonic)
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    speech_latencies: list[float] = field(default_factory=list)


class Session:
    def __init__(
        self,
        session_id: str,
        generator: StreamingGenerator,
        portrait: np.ndarray,
        lane: ComputeLane,
        limits: ServeLimits,
        metrics: ServeMetrics,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.id = session_id
        self.generator = generator
        self.portrait = portrait
        self.lane, self.limits, self.metrics, self.loop = lane, limits, metrics, loop
        self.inbox = AudioInbox(int(limits.max_queue_s * SAMPLE_RATE))
        self.out: asyncio.Queue[OutItem] = asyncio.Queue()
        self.credits = threading.Semaphore(limits.max_frame_queue)
        self.transport: str | None = None
        self.created = self.last_heard = time.monotonic()
        self.started: float | None = None
        self.frames_sent = 0
        self.idle_samples = 0
        self.client_samples = 0
        self.fps = 0.0
        self._window = _Window()
        self.speech_latencies: deque[float] = deque(maxlen=LATENCY_HISTORY)
        self._thread: threading.Thread | None = None
        config = generator.model.config
        self.chunk_samples = config.chunk_frames * config.video_frames_per_latent * FRAME_SAMPLES

    @classmethod
    def seeded(cls, base: StreamingGenerator, seed: int) -> StreamingGenerator:
        """A generator sharing `base`'s networks, with its own sampling seed and its own stats."""
        generator = copy.copy(base)
        inference = base.config.inference.model_copy(update={"seed": seed})
        generator.config = base.config.model_copy(update={"inference": inference})
        generator.stats = StreamStats(notes=list(base.stats.notes))
        return generator

    # --- called from the event loop ---------------------------------------------------------------

    def attach(self, transport: str) -> None:
        if self.transport is not None:
            raise UserError(f"session {self.id} already has a {self.transport} client")
        self.transport = transport
        self.started = self.last_heard = time.monotonic()
        self._window = _Window()
        self._thread = threading.Thread(target=self._run, name=f"session-{self.id}", daemon=True)
        self._thread.start()

    def push_audio(self, samples: np.ndarray) -> None:
        self.last_heard = time.monotonic()
        self.inbox.push(samples, self.last_heard)

    def interrupt(self) -> None:
        self.last_heard = time.monotonic()
        self.inbox.interrupt()

    def end(self) -> None:
        self.last_heard = time.monotonic()
        self.inbox.end()

    def close(self) -> None:
        self.inbox.close()

    def is_current(self, frame: OutFrame) -> bool:
        return frame.epoch == self.inbox.epoch

    def done_with(self, frame: OutFrame, sent: bool) -> None:
        """The transport sent (or, for a stale epoch, dropped) `frame`: give back its credit, count it."""
        self.credits.release()
        if not sent:
            return
        latency = time.monotonic() - frame.arrived
        self.frames_sent += 1
        self._window.frames += 1
        self._window.latencies.append(latency)
        if frame.from_client:
            self._window.speech_latencies.append(latency)
            self.speech_latencies.append(latency)
        self.metrics.frame_sent(latency, frame.from_client)

    def stats_event(self) -> dict:
        window, now = self._window, time.monotonic()
        self.fps = window.frames / max(now - window.start, 1e-6)
        self._window = _Window(start=now)
        self.metrics.session_fps.labels(session=self.id).set(self.fps)
        return {
            "type": "stats",
            "fps": round(self.fps, 2),
            "latency_ms": _mean_ms(window.latencies),
            "speech_latency_ms": _mean_ms(window.speech_latencies),
            "frames": self.frames_sent,
            "queued_audio_s": round(self.inbox.queued / SAMPLE_RATE, 3),
        }

    def end_event(self, end: StreamEnd) -> dict:
        return {
            "type": "end",
            "frames": self.frames_sent,
            "idle_frames": end.idle_frames,
            "audio_s": end.audio_s,
            **latency_percentiles(list(self.speech_latencies)),
        }

    # --- the session's thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._stream_until_end()
            self._post(StreamEnd(self.idle_samples // FRAME_SAMPLES, self.client_samples / SAMPLE_RATE))
        except Closed:
            self._post(None)
        except UserError as err:
            self._post({"type": "error", "error": str(err)})
            self._post(None)
        except Exception as err:
            log.exception("session %s failed", self.id)
            self._post({"type": "error", "error": f"internal error: {type(err).__name__}: {err}"})
            self._post(None)

    def _stream_until_end(self) -> None:
        while True:
            timeline = Timeline()
            feed = LiveFeed(
                self.inbox,
                timeline,
                self.chunk_samples,
                self.limits.idle_grace_s,
                self.limits.max_lag_s,
                pause=self.lane.release,
                resume=self.lane.acquire,
            )
            chunks = self.generator.stream(self.portrait, feed)
            assert isinstance(chunks, Generator)
            try:
                while True:
                    with self.lane.turn():
                        chunk = next(chunks, None)
                    if chunk is None:
                        return
                    self._emit(chunk, timeline, feed.epoch)
            except Interrupted:
                continue
            except UserError:
                if timeline.fed == 0:  # `end` before any audio or idle frame: an empty video
                    return
                raise
            finally:
                chunks.close()
                self.idle_samples += timeline.idle_samples
                self.client_samples += timeline.client_samples

    def _emit(self, chunk: FrameChunk, timeline: Timeline, epoch: int) -> None:
        for i, rgb in enumerate(chunk.frames):
            segment, audio = timeline.frame(chunk.first_frame + i)
            self._wait_credit(epoch)
            jpeg = encode_jpeg(rgb, self.limits.jpeg_quality) if self.transport == "ws" else None
            self._post(OutFrame(epoch, rgb, jpeg, audio, segment.arrived, segment.from_client))

    def _wait_credit(self, epoch: int) -> None:
        deadline = time.monotonic() + self.limits.slow_client_s
        while not self.credits.acquire(timeout=0.1):
            if self.inbox.closed:
                raise Closed
            if time.monotonic() > deadline:
                raise UserError(
                    f"the client took no frame for {self.limits.slow_client_s:g} s with "
                    f"{self.limits.max_frame_queue} frames queued: disconnected as too slow"
                )
        if self.inbox.closed:
            self.credits.release()
            raise Closed
        if self.inbox.epoch != epoch:
            self.credits.release()
            raise Interrupted

    def _post(self, item: OutItem) -> None:
        try:
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)
        except RuntimeError:  # the event loop is gone: the server is shutting down
            self.inbox.close()


def latency_percentiles(latencies: list[float]) -> dict[str, float | None]:
    """p50/p95 audio-to-frame latency (ms) of the frames made from the client's audio."""
    if not latencies:
        return {"latency_p50_ms": None, "latency_p95_ms": None}
    p50, p95 = np.percentile(np.asarray(latencies) * 1000, [50, 95])
    return {"latency_p50_ms": round(float(p50), 1), "latency_p95_ms": round(float(p95), 1)}


def _mean_ms(values: list[float]) -> float | None:
    return round(1000 * sum(values) / len(values), 1) if values else None
