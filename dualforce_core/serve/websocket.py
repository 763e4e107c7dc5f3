"""The WebSocket transport: PCM in, JPEG frames and JSON events out, on one connection.

Two tasks per connection: the receiver turns messages into audio, interrupts and `end`; the sender is
the only one that writes to the socket (frames and events in the order the session produced them, plus
a stats event about once a second), so a slow client only ever blocks its own sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from dualforce_core.errors import UserError
from dualforce_core.serve.codec import pcm_to_float
from dualforce_core.serve.registry import SessionRegistry
from dualforce_core.serve.session import OutFrame, Session, StreamEnd

CLOSE_NORMAL, CLOSE_ERROR = 1000, 1011


async def serve_websocket(websocket: WebSocket, session_id: str, registry: SessionRegistry) -> None:
    session = registry.get(session_id)
    if session is None:  # refused in the handshake, like any HTTP request for an unknown session
        await websocket.send_denial_response(JSONResponse({"error": f"unknown session {session_id!r}"}, 404))
        return
    try:
        session.attach("ws")
    except UserError as err:
        await websocket.send_denial_response(JSONResponse({"error": str(err)}, 409))
        return
    await websocket.accept()
    await websocket.send_text(json.dumps({"type": "ready"}))
    sender = asyncio.create_task(_send_loop(websocket, session))
    receiver = asyncio.create_task(_receive_loop(websocket, session, registry))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        registry.remove(session_id)
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_NORMAL)


async def _fail(websocket: WebSocket, error: str) -> None:
    await websocket.send_text(json.dumps({"type": "error", "error": error}))
    await websocket.close(CLOSE_NORMAL)


async def _receive_loop(websocket: WebSocket, session: Session, registry: SessionRegistry) -> None:
    limits = session.limits
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=limits.idle_timeout_s)
        except TimeoutError:
            _error(session, registry, "idle", f"no message for {limits.idle_timeout_s:g} s: session closed")
            session.close()
            return
        if message["type"] == "websocket.disconnect":
            return
        data, text = message.get("bytes"), message.get("text")
        size = len(data) if data is not None else len((text or "").encode())
        if size > limits.max_message_bytes:
            _error(
                session,
                registry,
                "message_size",
                f"message of {size} bytes refused: the limit is {limits.max_message_bytes} bytes "
                "(send audio in smaller pieces)",
            )
            continue
        try:
            if data is not None:
                session.push_audio(pcm_to_float(data))
            else:
                _control(session, text or "")
        except UserError as err:
            _error(session, registry, "bad_input", str(err))


def _control(session: Session, text: str) -> None:
    try:
        kind = json.loads(text).get("type")
    except (ValueError, AttributeError):
        raise UserError(f"text messages must be JSON objects with a type, got {text[:80]!r}") from None
    if kind == "interrupt":
        session.interrupt()
    elif kind == "end":
        session.end()
    else:
        raise UserError(f'unknown message type {kind!r}: send {{"type": "interrupt"}} or {{"type": "end"}}')


def _error(session: Session, registry: SessionRegistry, kind: str, error: str) -> None:
    registry.metrics.errors.labels(kind=kind).inc()
    session.out.put_nowait({"type": "error", "error": error})


async def _send_loop(websocket: WebSocket, session: Session) -> None:
    limits = session.limits
    next_stats = time.monotonic() + limits.stats_interval_s
    assert session.started is not None
    while True:
        now = time.monotonic()
        if now >= next_stats:
            await websocket.send_text(json.dumps(session.stats_event()))
            next_stats = now + limits.stats_interval_s
        if now - session.started > limits.max_session_s:
            await _fail(websocket, f"session reached its maximum duration of {limits.max_session_s:g} s")
            return
        try:
            item = await asyncio.wait_for(session.out.get(), timeout=max(next_stats - now, 0.01))
        except TimeoutError:
            continue
        if isinstance(item, OutFrame):
            current = session.is_current(item)
            if current:
                assert item.jpeg is not None
                await websocket.send_bytes(item.jpeg)
            session.done_with(item, sent=current)
        elif isinstance(item, StreamEnd):
            await websocket.send_text(json.dumps(session.end_event(item)))
            await websocket.close(CLOSE_NORMAL)
            return
        elif item is None:
            await websocket.close(CLOSE_ERROR)
            return
        else:
            await websocket.send_text(json.dumps(item))
