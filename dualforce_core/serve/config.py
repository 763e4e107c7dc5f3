"""The server's limits: every queue is bounded and every wait has an end, so one client cannot hurt others."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    max_sessions: int = 4
    max_queue_s: float = 30.0
    """Client audio the model has not consumed yet; past it a message is refused with an error event."""
    max_frame_queue: int = 250
    """Frames generated but not yet sent (10 s at 25 fps); past it the session waits for its client."""
    slow_client_s: float = 10.0
    """A client that takes no frame for this long while its queue is full is disconnected."""
    max_message_bytes: int = 1 << 20
    """Largest WebSocket message taken (1 MiB ≈ 32 s of PCM); larger ones get an error event."""
    max_session_s: float = 3600.0
    idle_timeout_s: float = 300.0
    """A session with no client attached, or whose client sends nothing, for this long is closed."""
    stats_interval_s: float = 1.0
    idle_grace_s: float = 0.1
    """Client audio may be this late before silence fills the gap (absorbs network jitter)."""
    max_lag_s: float = 1.0
    """An overloaded session's idle clock never runs further ahead of its video than this."""
    jpeg_quality: int = 85
