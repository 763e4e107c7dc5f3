"""Auth, the session limit, the CLI, and fairness under load: each against a real server on loopback."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus

from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.serve.client import (
    SessionRun,
    connect_session,
    open_session,
    pcm_bytes,
    request,
    stream_realtime,
)
from dualforce_core.serve.config import ServeLimits
from tests.serve.conftest import LIVE_OVERRIDES, free_port, portrait_png, speech, start_server

TOKEN = "s3cret-token"


def test_every_request_needs_the_token(generator: StreamingGenerator) -> None:
    live = start_server(generator, ServeLimits(max_sessions=2), token=TOKEN)
    try:
        for method, path in (
            ("GET", "/healthz"),
            ("GET", "/metrics"),
            ("GET", "/"),
            ("POST", "/v1/sessions"),
        ):
            reply = request(live.base, method, path, body={} if method == "POST" else None)
            assert reply.status == 401, (method, path)
            assert reply.body == {"error": "missing or wrong bearer token"}
        assert request(live.base, "GET", "/healthz", token="wrong").status == 401
        assert request(live.base, "GET", "/healthz", token=TOKEN).body == {"status": "ok"}
        created = open_session(live.base, portrait_png(), token=TOKEN)
        assert created.status == 201
        ws_path = created.body["ws"]
        with pytest.raises(InvalidStatus) as refused:
            connect_session(live.base, ws_path)
        assert refused.value.response.status_code == 401
        with connect_session(live.base, f"{ws_path}?token={TOKEN}") as ws:  # a browser's way
            assert json.loads(ws.recv(timeout=30)) == {"type": "ready"}
    finally:
        live.stop()


def test_sessions_past_the_limit_get_429_until_one_is_deleted(generator: StreamingGenerator) -> None:
    live = start_server(generator, ServeLimits(max_sessions=2))
    try:
        first, second = (open_session(live.base, portrait_png(i)) for i in range(2))
        assert first.status == second.status == 201
        third = open_session(live.base, portrait_png(2))
        assert third.status == 429 and "limit is 2" in third.body["error"]
        assert request(live.base, "DELETE", f"/v1/sessions/{first.body['session_id']}").status == 204
        assert open_session(live.base, portrait_png(3)).status == 201
        assert "dualforce_serve_active_sessions 2.0" in request(live.base, "GET", "/metrics").body
    finally:
        live.stop()


@pytest.mark.slow
def test_four_concurrent_sessions_all_progress_and_none_starves(generator: StreamingGenerator) -> None:
    live = start_server(generator, ServeLimits(max_sessions=4))
    runs: list[SessionRun | None] = [None] * 4

    def client(i: int) -> None:
        runs[i] = stream_realtime(live.base, portrait_png(i), speech(4.0, seed=i), seed=i)

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        live.stop()
    done = [r for r in runs if r is not None]
    assert len(done) == 4, "a session never finished"
    # While all four were running, each got a fair share (round robin; one chunk is 8 frames).
    start, stop = max(r.arrivals[0] for r in done), min(r.arrivals[-1] for r in done)
    in_window = [sum(start <= a <= stop for a in r.arrivals) for r in done]
    assert min(in_window) >= 0.5 * max(in_window) - 16, in_window
    for r in done:
        end = r.end()
        assert not r.errors()
        assert (
            end["frames"] == len(r.arrivals) == math.ceil(r.audio_samples * 25 / 16000) + end["idle_frames"]
        )
    print(
        "\n4 concurrent tiny sessions (32 px, 1 step, CPU, 1 thread): "
        + "; ".join(
            f"{r.sustained_fps:.1f} fps, p50 {r.end()['latency_p50_ms']} ms, p95 {r.end()['latency_p95_ms']} ms"
            for r in done
        )
    )


@pytest.mark.slow
def test_cli_serves_a_random_preset_behind_a_token(serve_weights: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DUALFORCE_SERVE_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "dualforce_core.cli.main",
        "serve",
        "--preset",
        "tiny",
        "--port",
        str(port),
    ]
    command += ["--max-sessions", "1", f"weights.root={serve_weights}", *LIVE_OVERRIDES]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(base):
            assert process.poll() is None and time.monotonic() < deadline, "dualforce serve did not start"
            time.sleep(0.5)
        assert request(base, "GET", "/healthz").status == 401
        created = open_session(base, portrait_png(), token=TOKEN)
        assert created.status == 201 and created.body["width"] == 32
        assert open_session(base, portrait_png(), token=TOKEN).status == 429
        with connect_session(base, created.body["ws"], token=TOKEN) as ws:
            assert json.loads(ws.recv(timeout=60)) == {"type": "ready"}
            ws.send(pcm_bytes(np.zeros(1600, np.float32)))
            ws.send(json.dumps({"type": "end"}))
            frames = 0
            while isinstance(message := ws.recv(timeout=60), bytes) or json.loads(message)["type"] != "end":
                frames += isinstance(message, bytes)
            assert json.loads(message)["frames"] == frames >= 3
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode in (0, -15), output
    assert "RANDOMLY INITIALISED" in output


def _answers(base: str) -> bool:
    try:
        return request(base, "GET", "/healthz", token=TOKEN, timeout=2).status == 200
    except OSError:
        return False
