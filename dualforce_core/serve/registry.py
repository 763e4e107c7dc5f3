"""The table of open sessions: creation under `max_sessions`, lookup, removal, and reaping the idle."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np

from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.serve.config import ServeLimits
from dualforce_core.serve.lane import ComputeLane
from dualforce_core.serve.metrics import ServeMetrics
from dualforce_core.serve.session import Session


class TooManySessions(Exception):
    pass


class SessionRegistry:
    def __init__(self, generator: StreamingGenerator, limits: ServeLimits, metrics: ServeMetrics) -> None:
        self.generator, self.limits, self.metrics = generator, limits, metrics
        self.lane = ComputeLane()
        self.sessions: dict[str, Session] = {}

    def create(self, portrait: np.ndarray, seed: int) -> Session:
        if len(self.sessions) >= self.limits.max_sessions:
            raise TooManySessions(
                f"{len(self.sessions)} sessions are open, the limit is {self.limits.max_sessions}; "
                "close one (DELETE /v1/sessions/<id>) or try later"
            )
        session_id = uuid.uuid4().hex
        generator = Session.seeded(self.generator, seed)
        session = Session(
            session_id, generator, portrait, self.lane, self.limits, self.metrics, asyncio.get_running_loop()
        )
        self.sessions[session_id] = session
        self.metrics.active_sessions.set(len(self.sessions))
        return session

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def remove(self, session_id: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        session.close()
        self.metrics.forget(session_id)
        self.metrics.active_sessions.set(len(self.sessions))
        return True

    def reap(self) -> list[str]:
        """Close sessions nobody attached to for `idle_timeout_s`. Attached ones are timed out by their
        transport (which tells the client why); this is the backstop for a transport that vanished."""
        now, limits = time.monotonic(), self.limits
        stale = [
            s.id
            for s in self.sessions.values()
            if (s.transport is None and now - s.created > limits.idle_timeout_s)
            or now - s.last_heard > 2 * limits.idle_timeout_s
            or now - s.created > limits.max_session_s + limits.idle_timeout_s
        ]
        for session_id in stale:
            self.remove(session_id)
        return stale

    def close_all(self) -> None:
        for session_id in list(self.sessions):
            self.remove(session_id)
