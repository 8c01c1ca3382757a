"""The Guard middleware: request ids, the body size limit, and bearer-token authentication for the APIs."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import PRINCIPAL_KEY, REQUEST_ID_KEY, TokenFile


class Guard:
    """Pure ASGI middleware: request ids, the body size limit, and bearer-token authentication for the APIs.

    /graphql POST and /api/ need a valid token (401 with WWW-Authenticate otherwise); the GraphiQL page (GET),
    health, readiness and metrics do not. Scopes are checked per operation, further in.
    """

    def __init__(self, app: ASGIApp, tokens: TokenFile, max_body_bytes: int) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _error(413, "PAYLOAD_TOO_LARGE", f"request body over {self.max_body_bytes} bytes")(
                scope, receive, send_with_id
            )
            return
        if _needs_token(scope["path"], scope["method"]):
            principal = self.tokens.verify(_bearer(headers)) if _bearer(headers) else None
            if principal is None:
                response = _error(401, "UNAUTHENTICATED", "a valid bearer token is required")
                response.headers["www-authenticate"] = (
                    'Bearer realm="idgraph", error="invalid_token"' if _bearer(headers) else 'Bearer realm="idgraph"'
                )
                await response(scope, receive, send_with_id)
                return
            scope[PRINCIPAL_KEY] = principal
        await self.app(scope, _limited(receive, self.max_body_bytes), send_with_id)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def _needs_token(path: str, method: str) -> bool:
    if path == "/graphql":
        return method != "GET"  # GET only serves the GraphiQL page; queries over GET are disabled
    return path.startswith("/api/")


def _bearer(headers: Headers) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


def _limited(receive: Receive, limit: int) -> Receive:
    """Count body bytes as they arrive (chunked bodies have no content-length) and stop past the limit."""
    seen = 0

    async def guarded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return guarded


class BodyTooLarge(Exception):
    pass


async def body_too_large(request: Request, exc: Exception) -> JSONResponse:
    return _error(413, "PAYLOAD_TOO_LARGE", "request body too large")
