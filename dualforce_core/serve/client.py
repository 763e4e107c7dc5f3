"""A small synchronous client of the server's HTTP + WebSocket API (tests, the benchmark, integrations).

It speaks exactly the public protocol, so it doubles as a reference for writing a client elsewhere:
open a session with a portrait, stream PCM s16le 16 kHz mono, read JPEG frames and JSON events.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.sync.client import ClientConnection, connect

from dualforce_core.serve.codec import float_to_pcm


@dataclass
class HttpReply:
    status: int
    body: Any


def request(
    base: str, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 60
) -> HttpReply:
    """One HTTP request; JSON in and (when it is JSON) out. Error statuses are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            status, raw, kind = reply.status, reply.read(), reply.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, raw, kind = err.code, err.read(), err.headers.get("Content-Type", "")
    return HttpReply(status, json.loads(raw) if "json" in kind and raw else raw.decode(errors="replace"))


def open_session(base: str, image: bytes, seed: int = 0, token: str | None = None) -> HttpReply:
    """POST /v1/sessions with a PNG/JPEG portrait."""
    return request(
        base, "POST", "/v1/sessions", {"image": base64.b64encode(image).decode(), "seed": seed}, token
    )


def connect_session(base: str, ws_path: str, token: str | None = None) -> ClientConnection:
    """The session's WebSocket (token in the header; the query form `?token=` works too)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    url = base.replace("http", "ws", 1) + ws_path
    return connect(url, additional_headers=headers, proxy=None, max_size=None, compression=None)


def pcm_bytes(samples: np.ndarray) -> bytes:
    """Float32 samples in [-1, 1] → PCM s16le bytes, the WebSocket's audio format."""
    return float_to_pcm(samples).astype("<i2").tobytes()


@dataclass
class SessionRun:
    """What one real-time client saw: when each frame arrived, and the events."""

    audio_samples: int
    ready_at: float
    arrivals: list[float]
    events: list[dict[str, Any]]

    def end(self) -> dict[str, Any]:
        return next(e for e in self.events if e["type"] == "end")

    def errors(self) -> list[str]:
        return [e["error"] for e in self.events if e["type"] == "error"]

    @property
    def sustained_fps(self) -> float:
        """Frames per second between the first and the last frame."""
        span = self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else 0.0
        return (len(self.arrivals) - 1) / span if span else 0.0


def stream_realtime(
    base: str, image: bytes, audio: np.ndarray, seed: int = 0, token: str | None = None, piece: int = 640
) -> SessionRun:
    """Open a session and stream `audio` (16 kHz float32) at real-time pace in `piece`-sample messages,
    as a microphone or a TTS voice would, then `end`; returns once the server's end event arrives."""
    reply = open_session(base, image, seed, token)
    if reply.status != 201:
        raise RuntimeError(f"POST /v1/sessions: {reply.status} {reply.body}")
    arrivals: list[float] = []
    events: list[dict[str, Any]] = []
    with connect_session(base, reply.body["ws"], token) as ws:
        ready = json.loads(ws.recv(timeout=120))
        if ready != {"type": "ready"}:
            raise RuntimeError(f"expected the ready event, got {ready}")
        start = time.monotonic()

        def feed() -> None:
            for i, at in enumerate(range(0, len(audio), piece)):
                time.sleep(max(0.0, start + i * piece / 16000 - time.monotonic()))
                ws.send(pcm_bytes(audio[at : at + piece]))
            ws.send(json.dumps({"type": "end"}))

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        while True:
            message = ws.recv(timeout=300)
            if isinstance(message, bytes):
                arrivals.append(time.monotonic())
                continue
            events.append(json.loads(message))
            if events[-1]["type"] == "end":
                break
        feeder.join()
    return SessionRun(len(audio), start, arrivals, events)
