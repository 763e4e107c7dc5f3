"""The FastAPI application: routes, limits and the lifespan that reaps idle sessions and closes all.

`create_app` takes a ready `StreamingGenerator` (the networks are loaded once and shared by every
session) so tests and `dualforce serve` build the same app; uvicorn runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from dualforce_core.data.config import DataConfig
from dualforce_core.errors import UserError
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.serve.auth import BearerAuth
from dualforce_core.serve.codec import decode_portrait
from dualforce_core.serve.config import ServeLimits
from dualforce_core.serve.metrics import ServeMetrics
from dualforce_core.serve.registry import SessionRegistry, TooManySessions
from dualforce_core.serve.websocket import serve_websocket
from dualforce_core.timeline import FPS, SAMPLE_RATE

REAP_INTERVAL_S = 1.0


def create_app(
    generator: StreamingGenerator,
    portrait_size: int,
    crop: DataConfig,
    limits: ServeLimits | None = None,
    token: str | None = None,
) -> FastAPI:
    limits = limits or ServeLimits()
    metrics = ServeMetrics()
    registry = SessionRegistry(generator, limits, metrics)
    peers: set[Any] = set()  # WebRTC peer connections, closed at shutdown

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def reap() -> None:
            while True:
                await asyncio.sleep(REAP_INTERVAL_S)
                registry.reap()

        reaper = asyncio.create_task(reap())
        try:
            yield
        finally:
            reaper.cancel()
            registry.close_all()
            for pc in list(peers):
                await pc.close()

    app = FastAPI(title="DualForce live server", lifespan=lifespan)
    app.state.registry = registry
    app.add_middleware(BearerAuth, token=token)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(resources.files("dualforce_core.serve").joinpath("static/index.html").read_text())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus() -> Response:
        body = metrics.render(registry.sessions.values(), registry.lane)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/sessions")
    async def create_session(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return error(400, 'the body must be JSON: {"image": "<base64 PNG/JPEG>", "seed": 0}')
        if not isinstance(body, dict):
            return error(400, 'the body must be a JSON object: {"image": "<base64 PNG/JPEG>", "seed": 0}')
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            return error(400, f'"seed" must be an integer, got {seed!r}')
        if len(registry.sessions) >= limits.max_sessions:  # before decoding: refuse cheaply
            return error(429, f"{len(registry.sessions)} sessions open, the limit is {limits.max_sessions}")
        try:
            portrait = await run_in_threadpool(decode_portrait, body.get("image"), portrait_size, crop)
        except UserError as err:
            return error(400, f"bad image: {err}")
        try:
            session = registry.create(portrait, seed)
        except TooManySessions as err:
            return error(429, str(err))
        height, width = portrait.shape[:2]
        return JSONResponse(
            {
                "session_id": session.id,
                "ws": f"/v1/sessions/{session.id}/ws",
                "offer": f"/v1/sessions/{session.id}/offer",
                "fps": FPS,
                "sample_rate": SAMPLE_RATE,
                "width": width,
                "height": height,
            },
            status_code=201,
        )

    @app.delete("/v1/sessions/{session_id}")
    async def delete_session(session_id: str) -> Response:
        if not registry.remove(session_id):
            return error(404, f"unknown session {session_id!r}")
        return Response(status_code=204)

    @app.post("/v1/sessions/{session_id}/offer")
    async def offer(session_id: str, request: Request) -> JSONResponse:
        session = registry.get(session_id)
        if session is None:
            return error(404, f"unknown session {session_id!r}")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("sdp"), str) or body.get("type") != "offer":
            return error(400, 'the body must be an SDP offer: {"sdp": "...", "type": "offer"}')
        from dualforce_core.serve.webrtc import answer_offer  # aiortc loads only when WebRTC is used

        try:
            answer = await answer_offer(session, registry, body["sdp"], peers)
        except UserError as err:
            return error(409, str(err))
        except ValueError as err:
            return error(400, f"bad SDP offer: {err}")
        return JSONResponse({"sdp": answer.sdp, "type": answer.type})

    @app.websocket("/v1/sessions/{session_id}/ws")
    async def websocket(websocket: WebSocket, session_id: str) -> None:
        await serve_websocket(websocket, session_id, registry)

    return app
