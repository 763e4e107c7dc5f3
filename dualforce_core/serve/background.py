"""The app under uvicorn in a background thread, on a free loopback port (tests, benchmarks, notebooks)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from dualforce_core.inference.frontend import portrait_settings
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.serve.app import create_app
from dualforce_core.serve.config import ServeLimits


@dataclass
class BackgroundServer:
    base: str
    server: uvicorn.Server
    thread: threading.Thread
    app: FastAPI  # its `state.registry` holds the open sessions

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        if self.thread.is_alive():
            raise RuntimeError("uvicorn did not stop within 30 s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_background(
    generator: StreamingGenerator, limits: ServeLimits, token: str | None = None
) -> BackgroundServer:
    """Start the server for `generator` (portrait size and crop from its config) and wait until it listens."""
    size, crop = portrait_settings(generator.config, generator.preprocessing)
    app = create_app(generator, size, crop, limits, token)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=4 * limits.max_message_bytes
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return BackgroundServer(f"http://127.0.0.1:{port}", server, thread, app)
