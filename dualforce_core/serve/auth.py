"""Bearer-token check for every request, as ASGI middleware so HTTP and WebSocket share one rule.

HTTP requests need `Authorization: Bearer T`. A browser cannot set that header on a WebSocket or on the
page it navigates to, so those two may pass `?token=T` instead. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket") or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        denial = JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        denial.headers["WWW-Authenticate"] = "Bearer"
        if scope["type"] == "http":
            await denial(scope, receive, send)
        else:
            await WebSocket(scope, receive, send).send_denial_response(denial)

    def _allowed(self, scope: Scope) -> bool:
        assert self.token is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode(), self.token.encode()
                ):
                    return True
        query_allowed = scope["type"] == "websocket" or (scope["type"] == "http" and scope["path"] == "/")
        if query_allowed:
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            return hmac.compare_digest(given.encode(), self.token.encode())
        return False
