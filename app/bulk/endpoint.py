"""WebhookEndpoint: POSTs a signed JSON body to the change webhook's URL and answers the status code.

The standard library's http.client in a worker thread (idgraph has no HTTP client among its dependencies). One
connection per POST; redirects are not followed (a 3xx is a failed attempt). The whole exchange, connection to
response, is bounded by `timeout_s`: past it the socket is shut down under the worker thread, so no request of this
endpoint outlives its bound (the delivery lease relies on that).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from app import __version__
from app.signature import signed_headers

MAX_RESPONSE_BYTES = 65_536  # read of a response body, then dropped: only its status counts
ABORT_WAIT_S = 2.0  # after shutting the socket down, how long to wait for the worker thread to notice


class WebhookEndpoint:
    def __init__(self, url: str, secret: str, *, timeout_s: float, clock: Callable[[], float] = time.time) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the change webhook URL must be http(s)://host[:port]/path")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not self._target.isascii() or any(c.isspace() for c in self._target):
            raise ValueError("the change webhook URL's path must be ASCII without spaces (percent-encode it)")
        # Made once: loading the trust store takes tens of milliseconds, not to be paid on the event loop per POST.
        self._tls = ssl.create_default_context() if self._https else None
        self._secret = secret
        self._timeout_s = timeout_s
        self._clock = clock

    async def post(self, body: bytes) -> int:
        """POST `body` signed now; returns the response's status. Raises TimeoutError past the bound, OSError (e.g.
        ConnectionRefusedError) or http.client.HTTPException when there is no response."""
        headers = {
            "content-type": "application/json",
            "user-agent": f"idgraph/{__version__}",
            **signed_headers(self._secret, int(self._clock()), body),
        }
        connection = self._connection()
        exchange = asyncio.ensure_future(asyncio.to_thread(self._exchange, connection, body, headers))
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.shield(exchange)
        finally:
            if not exchange.done():  # timed out or cancelled: stop the worker thread's request where it is
                _abort(connection)
                await asyncio.wait({exchange}, timeout=ABORT_WAIT_S)
            if exchange.done() and not exchange.cancelled():
                exchange.exception()  # retrieved: a late failure of an abandoned exchange is not "never retrieved"
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout_s, context=self._tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)

    def _exchange(self, connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> int:
        connection.request("POST", self._target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status


def batch_body(events: list[dict[str, object]]) -> bytes:
    """The body of one delivery: {"events": [...]}, compact UTF-8 JSON (the signature covers these exact bytes)."""
    return json.dumps({"events": events}, separators=(",", ":"), ensure_ascii=False).encode()


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
