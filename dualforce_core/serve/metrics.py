"""Prometheus metrics of the server, in a registry of its own (two apps in one process never collide)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dualforce_core.timeline import SAMPLE_RATE

if TYPE_CHECKING:
    from dualforce_core.serve.lane import ComputeLane
    from dualforce_core.serve.session import Session

LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.active_sessions = Gauge(
            "dualforce_serve_active_sessions", "Sessions open (created and not yet closed)", registry=r
        )
        self.frames_sent = Counter("dualforce_serve_frames_sent", "Video frames sent to clients", registry=r)
        self.session_fps = Gauge(
            "dualforce_serve_session_fps", "Frames per second sent, per session, last stats window",
            ["session"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "dualforce_serve_audio_to_frame_latency_seconds",
            "From the arrival of a frame's last audio sample to the frame being sent; source=client for "
            "the client's audio, idle for silence the server filled in",
            ["source"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.audio_queue = Gauge(
            "dualforce_serve_audio_queue_seconds", "Client audio waiting for the model, per session",
            ["session"], registry=r,
        )  # fmt: skip
        self.frame_queue = Gauge(
            "dualforce_serve_frame_queue_depth", "Frames and events waiting to be sent, per session",
            ["session"], registry=r,
        )  # fmt: skip
        self.compute_queue = Gauge(
            "dualforce_serve_compute_queue_depth",
            "Sessions waiting for a turn on the compute lane",
            registry=r,
        )
        self.errors = Counter(
            "dualforce_serve_errors", "Error events sent to clients, by kind", ["kind"], registry=r
        )
        for source in ("client", "idle"):  # series exist (at zero) before the first frame
            self.latency.labels(source=source)

    def frame_sent(self, latency_s: float, from_client: bool) -> None:
        self.frames_sent.inc()
        self.latency.labels(source="client" if from_client else "idle").observe(latency_s)

    def forget(self, session_id: str) -> None:
        for gauge in (self.session_fps, self.audio_queue, self.frame_queue):
            with contextlib.suppress(KeyError):
                gauge.remove(session_id)

    def render(self, sessions: Iterable[Session], lane: ComputeLane) -> bytes:
        """The exposition text, with the queue gauges read now."""
        sessions = list(sessions)
        self.active_sessions.set(len(sessions))
        self.compute_queue.set(lane.depth)
        for session in sessions:
            self.audio_queue.labels(session=session.id).set(session.inbox.queued / SAMPLE_RATE)
            self.frame_queue.labels(session=session.id).set(session.out.qsize())
        return generate_latest(self.registry)
