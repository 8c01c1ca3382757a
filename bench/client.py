"""The benchmarks' HTTP client: HTTP/1.1 on one keep-alive connection, nothing else.

An agent desktop, a routing flow or middleware calls idgraph with its own HTTP client; the benchmarks time the
service, so their client should cost as little as possible. httpx costs about 2.4 ms of this process's time per
request on the 2-core benchmark machine (against 0.25 ms for a GET /healthz with this client), more than the
whole GraphQL layer of a resolve; bench.http_latency times one call with httpx beside this client, to show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class KeepAliveClient:
    """Requests one at a time over one connection, opened on first use and again after the server closes it."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {base_url}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> KeepAliveClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", path, None, headers or {})

    async def post_json(self, path: str, payload: object, headers: dict[str, str] | None = None) -> Reply:
        body = json.dumps(payload).encode()
        return await self.request("POST", path, body, {"content-type": "application/json", **(headers or {})})

    async def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(method, path, body, headers)
        except BaseException:
            await self.close()  # a half-read reply would poison the next request on this connection
            raise

    async def _exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"content-length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            content = await self._reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunks(self._reader)
        else:
            raise ValueError("a reply with neither content-length nor chunked encoding")
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return Reply(status, content)

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected: the blank line ends the body
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
