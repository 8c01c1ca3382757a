"""Metrics (Prometheus text format, one registry per app) and structured access logs, without personal data.

What is measured, and with which labels (every label value comes from a small, bounded set):

    idgraph_http_requests_total{route, method, status}            route = the route template, never the raw path
    idgraph_http_request_duration_seconds{route, method, status}  histogram
    idgraph_graphql_operations_total{operation, outcome}          outcome = "ok" or the first error code
    idgraph_resolve_outcomes_total{status, interface}             FOUND / NOT_FOUND / AMBIGUOUS by rest|graphql|webhook
    idgraph_database_errors_total{code}                           DATABASE_UNAVAILABLE / TIMEOUT, from error responses
    idgraph_webhook_events_total{outcome}                         erased / nothing_to_erase / replay / ...
    idgraph_contested_identities                                  gauge: identities contested now (read at scrape)

On the same registry, only when their job runs: idgraph_retention_* (app/bulk/retention.py RetentionMetrics) and
idgraph_change_webhook_* (app/bulk/delivery.py DeliveryMetrics: delivered events, failed attempts{kind}, parked
batches, cursor lag, lease held).

The access log (logger "idgraph.access") writes one line per request: method, route template, status, duration,
request id, and for GraphQL the operation name and outcome. Never a query string, a body or an identity value.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError

access_logger = logging.getLogger("idgraph.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DATABASE_CODES = frozenset({"DATABASE_UNAVAILABLE", "TIMEOUT"})
RESOLVE_STATUSES = frozenset({"FOUND", "NOT_FOUND", "AMBIGUOUS"})
MAX_OPERATION_NAMES = 100  # distinct GraphQL operation labels kept; later new names count as "other"
UNMATCHED = "unmatched"  # route label of a path no route serves (its raw text may be anything)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CODE = re.compile(r"[A-Z][A-Z_]{0,39}")
# The first field of the first operation: `{ resolve(` / `query Q($x: ...) @dir { a: resolve(` / `mutation { ... }`.
_FIRST_FIELD = re.compile(
    r"^\s*(?:(?:query|mutation|subscription)\b[^{]*)?\{\s*(?:[A-Za-z_]\w*\s*:\s*)?([A-Za-z_]\w*)", re.DOTALL
)
_COMMENT = re.compile(r"#[^\n]*")


class Metrics:
    """The app's metrics, in a registry of its own, so several apps in one process never share counters.

    The HTTP middleware feeds the request, GraphQL and database-error metrics; the REST and webhook handlers call
    `resolve_outcome`; the GraphQL resolver of `resolve` should call it too (`interface="graphql"`).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "idgraph_http_requests",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "idgraph_http_request_duration_seconds",
            "HTTP request latency in seconds, by route template, method and status.",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.graphql = Counter(
            "idgraph_graphql_operations",
            "GraphQL operations by operation name (operationName or first field) and outcome (ok or error code).",
            ("operation", "outcome"),
            registry=self.registry,
        )
        self.resolves = Counter(
            "idgraph_resolve_outcomes",
            "Resolutions by status (FOUND, NOT_FOUND, AMBIGUOUS) and interface (rest, graphql, webhook).",
            ("status", "interface"),
            registry=self.registry,
        )
        self.database_errors = Counter(
            "idgraph_database_errors",
            "Requests answered with a database error, by code (DATABASE_UNAVAILABLE, TIMEOUT).",
            ("code",),
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "idgraph_webhook_events",
            "CRM erasure webhook deliveries by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        self.contested = Gauge(
            "idgraph_contested_identities",
            "Identities contested now: their holders hold more values of a max_per_customer key than one customer "
            "may, so they stopped linking. Read from the database at each scrape; the last value when it fails.",
            registry=self.registry,
        )
        self.count_contested: Callable[[], Awaitable[int]] | None = None  # set by the app's lifespan
        self._operations: set[str] = set()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(seconds)

    def graphql_operation(self, operation: str, outcome: str) -> str:
        """Count one GraphQL operation; returns the label it was counted under."""
        label = self._operation_label(operation)
        self.graphql.labels(label, outcome).inc()
        return label

    def resolve_outcome(self, status: str, interface: str) -> None:
        """Count one resolution. The GraphQL `resolve` resolver should call this with interface="graphql"."""
        if status in RESOLVE_STATUSES:
            self.resolves.labels(status, interface).inc()

    def database_error(self, code: str) -> None:
        if code in DATABASE_CODES:
            self.database_errors.labels(code).inc()

    def webhook_event(self, outcome: str) -> None:
        self.webhook_events.labels(outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        """GET /metrics: the Prometheus text exposition of this app's registry, the contested count read first."""
        if self.count_contested is not None:
            try:
                self.contested.set(await self.count_contested())
            except AppError as failed:  # the database is away: the metrics still answer, with the last count
                access_logger.warning("contested identities not counted: %s", failed.code)
        return Response(self.render(), media_type=CONTENT_TYPE_LATEST)

    def _operation_label(self, operation: str) -> str:
        if not _NAME.fullmatch(operation):
            return "unknown"
        if operation not in self._operations:
            if len(self._operations) >= MAX_OPERATION_NAMES:
                return "other"
            self._operations.add(operation)
        return operation


def graphql_operation_name(body: bytes) -> str:
    """The operation's name: its operationName, else the first field of the document; "unknown" when neither.

    Reads only `operationName` and the start of `query`: never the variables, which hold identity values.
    """
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: nesting too deep
        return "unknown"
    if not isinstance(request, dict):
        return "unknown"  # a batch (list) or junk: strawberry refuses it
    name = request.get("operationName")
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    query = request.get("query")
    if isinstance(query, str):
        found = _FIRST_FIELD.match(_COMMENT.sub("", query[:2000]))
        if found:
            return found.group(1)
    return "unknown"


def error_codes(body: bytes) -> list[str]:
    """The extensions.code of each error of a JSON error body ({"errors": [...]}); [] when there is none."""
    if b'"errors"' not in body:
        return []
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return []
    codes = []
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        codes.append(code if isinstance(code, str) and _CODE.fullmatch(code) else "INTERNAL")
    return codes


_STATUS_CODES = {
    400: "INVALID_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
}


def route_template(scope: Scope, routes: Iterable[BaseRoute]) -> str:
    """The template of the route that serves (or would serve) this request; UNMATCHED when none does."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in routes:  # answered before routing (401, 413): find the route it was meant for
        match, _ = candidate.matches(scope)
        if match is not Match.NONE:
            found = getattr(candidate, "path", None)
            return found if isinstance(found, str) else UNMATCHED
    return UNMATCHED


class Observability:
    """Pure ASGI middleware, outermost: times each request, counts it, and writes the access log line.

    It reads the request body only for POST /graphql (for the operation name) and the response body only for
    GraphQL and error responses (for error codes); it never logs either.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        is_graphql = scope["path"] == "/graphql" and scope["method"] == "POST"
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        status = 500
        request_id = "-"
        capture = False

        async def tee_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.append(message.get("body", b""))
            return message

        async def watch_send(message: Message) -> None:
            nonlocal status, request_id, capture
            if message["type"] == "http.response.start":
                status = int(message["status"])
                capture = is_graphql or status >= 400
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-request-id":
                        request_id = value.decode("latin-1")
            elif message["type"] == "http.response.body" and capture:
                response_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, tee_receive if is_graphql else receive, watch_send)
        finally:
            self._record(
                scope, status, time.perf_counter() - started, request_id, is_graphql, request_body, response_body
            )

    def _record(
        self,
        scope: Scope,
        status: int,
        seconds: float,
        request_id: str,
        is_graphql: bool,
        request_body: list[bytes],
        response_body: list[bytes],
    ) -> None:
        app = scope.get("app")
        routes: Iterable[BaseRoute] = getattr(app, "routes", ()) if app is not None else ()
        route = route_template(scope, routes)
        method = scope["method"]
        self.metrics.observe_request(route, method, status, seconds)
        codes = error_codes(b"".join(response_body)) if response_body else []
        for code in set(codes):
            self.metrics.database_error(code)
        fields: dict[str, object] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": request_id,
        }
        if is_graphql:
            operation = graphql_operation_name(b"".join(request_body)) if request_body else "unknown"
            if codes:
                outcome = codes[0]
            elif status == 200:
                outcome = "ok"
            else:
                outcome = _STATUS_CODES.get(status, "INTERNAL")
            fields["operation"] = self.metrics.graphql_operation(operation, outcome)
            fields["outcome"] = outcome
        # logfmt in the message for plain handlers; the same fields as record attributes for structured ones.
        if access_logger.isEnabledFor(logging.INFO):  # `serve --log-level warning` turns it off: build nothing
            access_logger.info(" ".join(f"{k}={v}" for k, v in fields.items()), extra=fields)
