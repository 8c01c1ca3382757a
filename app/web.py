"""The only place that builds the Starlette app: health, readiness, /graphql, REST, the CRM webhook, /metrics,
and the middleware in front of them (observability, then the guard)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import TypedDict

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import inspector
from app.auth import PRINCIPAL_KEY, REQUEST_ID_KEY, TokenFile
from app.config import Settings
from app.db.driver import AsyncDriver, create_driver
from app.db.keystore import read_stored_key
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.db.schema import schema_state
from app.db.webhook_events import WebhookEventRepository
from app.erasure_key import ErasureKey
from app.errors import ErasureKeyMismatch
from app.graphql.view import graphql_app
from app.observability import Metrics, Observability
from app.rest import rest_routes
from app.retention import RetentionMetrics, RetentionScheduler
from app.services import IdentityService
from app.webhooks import webhook_routes

logger = logging.getLogger(__name__)


class State(TypedDict):
    settings: Settings
    driver: AsyncDriver
    service: IdentityService
    metrics: Metrics
    erasure_key: ErasureKey
    webhook_events: WebhookEventRepository  # the CRM webhook's replay records, shared by every replica


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """200 when Neo4j answers and the schema is current; 503 with the reason otherwise, within ~2 seconds."""
    settings: Settings = request.state.settings
    driver: AsyncDriver = request.state.driver
    try:
        async with asyncio.timeout(min(settings.connect_timeout_s, 1.8)):
            # First a connectivity check, which the driver never retries: it health-checks the pooled connection it
            # takes and opens a new one when that one is dead, so a stopped database fails here at once ("refused").
            # The schema query alone would fail just as surely, but only after execute_query's retries had used up
            # the whole time budget, and the reason would then read "did not answer in time".
            await driver.verify_connectivity()
            state = await schema_state(driver, settings.neo4j_database)
    except TimeoutError:
        return JSONResponse({"status": "unavailable", "reason": "database did not answer in time"}, status_code=503)
    except Exception as exc:  # any driver failure means "not ready"; the reason names the type, never data
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable ({type(exc).__name__})"}, status_code=503
        )
    if not state.current:
        pending = [f"{m.version:03d}_{m.name}" for m in state.pending]
        return JSONResponse(
            {"status": "unavailable", "reason": "schema not applied; run `idgraph migrate`", "pending": pending},
            status_code=503,
        )
    refusal = await _erasure_key_refusal(request.state.erasure_key, driver, settings)
    if refusal is not None:
        return JSONResponse({"status": "unavailable", "reason": refusal}, status_code=503)
    return JSONResponse({"status": "ready", "schema_version": max(state.applied, default=0)})


async def _erasure_key_refusal(key: ErasureKey, driver: AsyncDriver, settings: Settings) -> str | None:
    """Why this process's erasure key is refused by the database (a read: a database without a key is fine)."""
    try:
        async with asyncio.timeout(min(settings.connect_timeout_s, 1.8)):
            key.accept(await read_stored_key(driver, settings.neo4j_database))
    except ErasureKeyMismatch as exc:
        return exc.message
    except TimeoutError:
        return "database did not answer in time"
    except Exception as exc:  # a driver failure: the reason names the type, never data
        return f"database unreachable ({type(exc).__name__})"
    return None


async def _check_erasure_key(key: ErasureKey, driver: AsyncDriver, settings: Settings) -> None:
    """Check the erasure key as soon as the database answers, so this process can hash (a mismatch is kept and
    reported by /readyz and every write)."""
    while await _erasure_key_refusal(key, driver, settings) is not None and not key.checked:
        await asyncio.sleep(1.0)


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


async def inspect_page(request: Request) -> Response:
    """The data stewards' page; it asks for a token itself and reads and writes through /graphql only."""
    return FileResponse(inspector.PAGE, media_type="text/html", headers=inspector.PAGE_HEADERS)


async def inspect_vendor(request: Request) -> Response:
    """A browser library the page loads, served from its installed npm package."""
    path = inspector.vendor_file(request.path_params["name"])
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    if not path.is_file():
        return PlainTextResponse(inspector.MISSING_VENDOR, status_code=503)
    return FileResponse(path, media_type="text/javascript", headers={"cache-control": "no-cache"})


def inspector_routes() -> list[BaseRoute]:
    return [
        Route("/inspect", inspect_page, methods=["GET"]),
        Route("/inspect/vendor/{name}", inspect_vendor, methods=["GET"]),
        Mount("/inspect/static", StaticFiles(directory=inspector.STATIC_DIR), name="inspect-static"),
    ]


def _retention(
    settings: Settings, driver: AsyncDriver, service: IdentityService, metrics: Metrics, key: ErasureKey
) -> RetentionScheduler | None:
    """The automatic retention task (app/retention.py), when the strategy turns it on; not started yet. It takes
    no lease before the database has accepted this process's erasure key."""
    from app.db.maintenance import MaintenanceRepository
    from app.db.retention import RetentionRepository

    if service.strategy.retention is None:
        return None
    database = settings.neo4j_database
    return RetentionScheduler(
        RetentionRepository(driver, database=database, timeout_s=settings.query_timeout_s),
        service,
        MaintenanceRepository(driver, database=database, timeout_s=max(settings.query_timeout_s, 60.0)),
        service.strategy.retention,
        lease_s=settings.retention_lease_s,
        metrics=RetentionMetrics(metrics.registry),
        ready=lambda: key.checked,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """The HTTP app. Strategy and tokens are read here, so a bad file stops start-up with a message naming it."""
    resolved = settings if settings is not None else Settings.from_env()
    # The driver logs query parameters (identity values: personal data) at DEBUG; keep it above that whoever
    # configures logging in the hosting process.
    logging.getLogger("neo4j").setLevel(max(logging.getLogger("neo4j").level, logging.INFO))
    strategy = resolved.strategy()
    tokens = TokenFile(resolved.tokens_file)  # read again every few seconds: a revoked token is refused soon
    erasure_key = resolved.erasure_key()
    metrics = Metrics()  # per app: several apps in one process never share counters

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        driver = create_driver(resolved)
        checked_key = ErasureKey(erasure_key)  # checked against the database's before it hashes
        repo = Neo4jRepository(
            driver,
            token_key=token_key(erasure_key),
            database=resolved.neo4j_database,
            timeout_s=resolved.query_timeout_s,
            erasure_key=checked_key,
            max_links_per_profile=strategy.protections.max_identities_per_profile,
        )
        service = IdentityService(repo, strategy, checked_key, max_component_nodes=resolved.max_component_nodes)
        # Checked now when the database answers, so the first request can hash; else as soon as it does.
        await _erasure_key_refusal(checked_key, driver, resolved)
        key_check = asyncio.create_task(_check_erasure_key(checked_key, driver, resolved))
        retention = _retention(resolved, driver, service, metrics, checked_key)  # None without [retention]
        if retention is not None:
            retention.start()
        try:
            yield {
                "settings": resolved,
                "driver": driver,
                "service": service,
                "metrics": metrics,
                "erasure_key": checked_key,
                "webhook_events": WebhookEventRepository(
                    driver, database=resolved.neo4j_database, timeout_s=resolved.query_timeout_s
                ),
            }
        finally:
            key_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await key_check
            if retention is not None:
                await retention.stop()
            await driver.close()

    graphql = graphql_app(graphiql=resolved.graphiql, introspection=resolved.introspection)
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
            *rest_routes(metrics),
            *webhook_routes(resolved.webhook_secret, metrics),
            *inspector_routes(),
        ],
        middleware=[
            Middleware(Observability, metrics=metrics),  # outermost: times and logs every request, 401s included
            Middleware(Guard, tokens=tokens, max_body_bytes=resolved.max_body_bytes),
        ],
        exception_handlers={BodyTooLarge: body_too_large},
        lifespan=lifespan,
    )
