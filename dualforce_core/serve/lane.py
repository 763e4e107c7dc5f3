"""One compute lane shared by every session: the model runs for one session at a time, turn by turn.

The accelerator (or torch's CPU threads) does one thing at a time anyway; session threads racing for it
would let the busiest starve the rest. Sessions queue for a turn in FIFO order and give it back every
time they produce a chunk and every time they wait for audio, so turns go round robin, chunk by chunk.
Sessions are not batched into one forward pass: each sits at its own point of its own timeline with its
own KV cache, so a batch would need caches of equal shape (future work).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class ComputeLane:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._holder: object | None = None
        self.turns = 0

    @property
    def depth(self) -> int:
        """Sessions waiting for a turn (not counting the one that has it)."""
        return len(self._waiting)

    def acquire(self) -> None:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            while self._holder is not None or self._waiting[0] is not ticket:
                self._cond.wait()
            self._waiting.popleft()
            self._holder = ticket
            self.turns += 1

    def release(self) -> None:
        with self._cond:
            self._holder = None
            self._cond.notify_all()

    @contextmanager
    def turn(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
