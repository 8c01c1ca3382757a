"""A local receiver of the change webhook for the delivery tests: a real HTTP server on a loopback port, in a thread
of the test process.

Every POST is recorded: its cursors, whether its signature checks out (app/signature.py's verify_signature, the
receiver's side of the scheme), when it started and ended, and the status answered. `refuse` decides the status of
each request from its number (1, 2, ...): the first attempts can fail, then it accepts. `hold_s` keeps each request
open a while, so two senders at once would overlap; `in_flight_max` says how many requests it ever held at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.errors import Unauthenticated
from app.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

SECRET = "change-webhook-test-secret"


@dataclass(frozen=True)
class Received:
    number: int
    cursors: tuple[int, ...]
    events: tuple[dict[str, object], ...]
    signed: bool  # the signature and timestamp check out
    status: int
    started: float  # time.monotonic()
    ended: float

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class ChangeReceiver:
    def __init__(
        self, secret: str = SECRET, *, refuse: Callable[[int], int | None] | None = None, hold_s: float = 0.0
    ) -> None:
        self.secret = secret
        self.refuse = refuse or (lambda number: None)  # the status to answer instead of 200, or None
        self.hold_s = hold_s
        self.received: list[Received] = []
        self.in_flight = 0
        self.in_flight_max = 0
        self._lock = threading.Lock()
        self._count = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/idgraph/changes?via=test"

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.accepted]

    def cursors_accepted(self) -> set[int]:
        return {c for r in self.accepted() for c in r.cursors}

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        started = time.monotonic()
        with self._lock:
            self._count += 1
            number = self._count
            self.in_flight += 1
            self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            try:
                verify_signature(
                    self.secret,
                    timestamp=headers.get(TIMESTAMP_HEADER),
                    signature=headers.get(SIGNATURE_HEADER),
                    body=body,
                    now=time.time(),
                )
                signed = True
            except Unauthenticated:
                signed = False
            events = tuple(json.loads(body)["events"])
            time.sleep(self.hold_s)
            status = self.refuse(number) or (200 if signed else 401)
        finally:
            with self._lock:
                self.in_flight -= 1
        cursors = tuple(int(str(e["cursor"])) for e in events)
        with self._lock:
            self.received.append(Received(number, cursors, events, signed, status, started, time.monotonic()))
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver._handle({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads what it needs from `received`

        return Handler

    @contextmanager
    def running(self) -> Iterator[ChangeReceiver]:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="change-receiver", daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


def in_order(received: list[Received]) -> bool:
    """Each request's cursors strictly increase."""
    return all(all(a < b for a, b in zip(r.cursors, r.cursors[1:], strict=False)) for r in received)


def overlapping_in_time(received: list[Received]) -> list[tuple[int, int]]:
    """Pairs of request numbers that were open at the same time."""
    spans = sorted(received, key=lambda r: r.started)
    return [(a.number, b.number) for i, a in enumerate(spans) for b in spans[i + 1 :] if b.started < a.ended]
