"""The WebSocket protocol end to end, against a real uvicorn server on loopback."""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection

from dualforce_core.serve.client import connect_session, open_session, pcm_bytes, request
from tests.serve.conftest import SIZE, LiveServer, portrait_png, speech

RATE = 16000


@dataclass
class Received:
    frames: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


def receive(
    ws: ClientConnection, into: Received, seconds: float | None = None, until_end: bool = False
) -> None:
    """Read messages for `seconds`, or until the end event (and the close) when `until_end`."""
    deadline = time.monotonic() + (seconds if seconds is not None else 120.0)
    while time.monotonic() < deadline:
        try:
            message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if isinstance(message, bytes):
            into.frames.append(message)
        else:
            into.events.append(json.loads(message))
            if until_end and into.events[-1]["type"] == "end":
                return
    assert not until_end, f"no end event in time; events: {into.events[-5:]}"


def send_audio(ws: ClientConnection, audio: np.ndarray, piece: int) -> None:
    for start in range(0, len(audio), piece):
        ws.send(pcm_bytes(audio[start : start + piece]))


def decode(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


def test_health_and_metrics(server: LiveServer) -> None:
    health = request(server.base, "GET", "/healthz")
    assert (health.status, health.body) == (200, {"status": "ok"})
    metrics = request(server.base, "GET", "/metrics")
    assert metrics.status == 200
    for name in (
        "dualforce_serve_active_sessions",
        "dualforce_serve_frames_sent_total",
        "dualforce_serve_audio_to_frame_latency_seconds_bucket",
        "dualforce_serve_compute_queue_depth",
    ):
        assert name in metrics.body


def test_websocket_session_idles_then_animates_all_audio_then_ends(server: LiveServer) -> None:
    created = open_session(server.base, portrait_png(), seed=3)
    assert created.status == 201, created.body
    body = created.body
    assert body["ws"] == f"/v1/sessions/{body['session_id']}/ws"
    assert (body["fps"], body["sample_rate"], body["width"], body["height"]) == (25, RATE, SIZE, SIZE)
    got = Received()
    connected = time.monotonic()
    with connect_session(server.base, body["ws"]) as ws:
        assert json.loads(ws.recv(timeout=30)) == {"type": "ready"}
        receive(ws, got, seconds=2.5)  # no audio yet: the face idles on silence
        idle_seen = len(got.frames)
        audio = speech(2.01, seed=1)  # 32160 samples: not a whole number of frames
        audio_sent = time.monotonic()
        send_audio(ws, audio, piece=1234)  # any chunk size, faster than real time
        ws.send(json.dumps({"type": "end"}))
        receive(ws, got, until_end=True)
        with pytest.raises(Exception):  # noqa: B017 — the server closes after the end event
            ws.recv(timeout=10)
    end = got.of("end")[0]
    assert idle_seen >= 10, f"only {idle_seen} idle frames in 2.5 s: the video froze without audio"
    assert end["frames"] == len(got.frames)
    assert end["frames"] == math.ceil(len(audio) * 25 / RATE) + end["idle_frames"]
    # Idle frames: at least those seen before the audio, at most what the wall clock allowed until then.
    assert idle_seen <= end["idle_frames"] <= math.ceil((audio_sent - connected) * 25) + 1
    assert end["audio_s"] == pytest.approx(len(audio) / RATE)
    assert end["latency_p50_ms"] is not None and end["latency_p95_ms"] >= end["latency_p50_ms"] > 0
    for jpeg in got.frames[:: max(1, len(got.frames) // 10)] + got.frames[-1:]:
        image = decode(jpeg)
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (SIZE, SIZE))
    stats = got.of("stats")
    assert len(stats) >= 2 and all({"fps", "latency_ms"} <= set(s) for s in stats)
    assert max(s["fps"] for s in stats) > 5
    assert not got.of("error")


def test_interrupt_drops_queued_audio_and_returns_to_idle(server: LiveServer) -> None:
    body = open_session(server.base, portrait_png(1)).body
    got = Received()
    with connect_session(server.base, body["ws"]) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        audio = speech(8.0, seed=2)
        send_audio(ws, audio, piece=16000)  # 8 s queued: far more than is generated in the next moments
        while len(got.frames) < 20:
            receive(ws, got, seconds=0.2)
        ws.send(json.dumps({"type": "interrupt"}))
        before = len(got.frames)
        receive(ws, got, seconds=2.5)  # after the interrupt: back to idle, video keeps flowing
        assert len(got.frames) - before >= 10
        ws.send(json.dumps({"type": "end"}))
        receive(ws, got, until_end=True)
    end = got.of("end")[0]
    assert end["frames"] == len(got.frames)
    assert end["audio_s"] < 6.0, "the queued audio was still animated after the interrupt"
    assert end["frames"] < math.ceil(len(audio) * 25 / RATE)
    assert not got.of("error")


def test_bad_inputs_get_clear_errors_while_another_session_keeps_streaming(server: LiveServer) -> None:
    steady = open_session(server.base, portrait_png(2)).body
    with connect_session(server.base, steady["ws"]) as good:
        assert json.loads(good.recv(timeout=30))["type"] == "ready"
        good_got = Received()
        receive(good, good_got, seconds=1.0)

        corrupt = open_session(server.base, b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
        assert corrupt.status == 400 and "image" in corrupt.body["error"]
        not_base64 = request(server.base, "POST", "/v1/sessions", {"image": "***", "seed": 0})
        assert not_base64.status == 400 and "base64" in not_base64.body["error"]
        not_json = request(server.base, "POST", "/v1/sessions", body="just text")
        assert not_json.status == 400 and "error" in not_json.body
        assert request(server.base, "DELETE", "/v1/sessions/nope").body == {"error": "unknown session 'nope'"}
        offer = request(server.base, "POST", "/v1/sessions/nope/offer", {"sdp": "v=0", "type": "offer"})
        assert offer.status == 404 and "error" in offer.body
        with pytest.raises(InvalidStatus) as refused:
            connect_session(server.base, "/v1/sessions/nope/ws")
        assert refused.value.response.status_code == 404

        bad = open_session(server.base, portrait_png(3)).body
        bad_got = Received()
        with connect_session(server.base, bad["ws"]) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            ws.send(b"\x01\x02\x03")  # odd length: not s16le
            ws.send(b"\x00" * 70_000)  # over the 64 kB message limit
            ws.send("interrupt please")  # not JSON
            ws.send(json.dumps({"type": "pause"}))  # not a message type
            for _ in range(12):  # 24 s in a burst, over the 20 s queue: refused, not dropped silently
                ws.send(pcm_bytes(speech(2.0, seed=4)))
            while len(bad_got.of("error")) < 5:
                receive(ws, bad_got, seconds=0.5)
            errors = [e["error"] for e in bad_got.of("error")]
            assert "even" in errors[0] and "3 bytes" in errors[0]
            assert "70000 bytes" in errors[1] and "limit" in errors[1]
            assert "JSON" in errors[2] and "'pause'" in errors[3]
            assert any("queue full" in e for e in errors[4:])
            ws.send(json.dumps({"type": "interrupt"}))
            tail = speech(0.5, seed=5)
            send_audio(ws, tail, piece=800)
            ws.send(json.dumps({"type": "end"}))
            receive(ws, bad_got, until_end=True)
            assert bad_got.of("end")[0]["frames"] == len(bad_got.frames) > 0

        before = len(good_got.frames)
        receive(good, good_got, seconds=1.0)
        assert len(good_got.frames) > before, "the healthy session stopped while the other misbehaved"
        assert not good_got.of("error")
    # Closed with its socket: the server notices the disconnect asynchronously, so wait for it (a loaded
    # machine may take a moment); a session that is never removed still fails after the deadline.
    sessions = server.app.state.registry.sessions
    deadline = time.monotonic() + 20.0
    while steady["session_id"] in sessions and time.monotonic() < deadline:
        time.sleep(0.1)
    assert request(server.base, "DELETE", f"/v1/sessions/{steady['session_id']}").status == 404
