"""The only place that builds the Starlette app: health, readiness, /graphql, REST, the CRM webhook, /metrics,
and the middleware in front of them (observability, then the guard)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.auth import TokenFile
from app.bulk.delivery import ChangeDeliverer, DeliveryMetrics
from app.bulk.retention import RetentionMetrics, RetentionScheduler
from app.config import Settings
from app.db.driver import AsyncDriver, create_driver
from app.db.repository import Neo4jRepository
from app.db.webhook_events import WebhookEventRepository
from app.domain.delivery import Delivery
from app.erasure_key import ErasureKey
from app.graphql.view import graphql_app
from app.rest.api import rest_routes
from app.rest.webhook import webhook_routes
from app.services.changes import ChangeFeed
from app.services.identity import IdentityService
from app.services.ports import ChangeLog
from app.web import inspector
from app.web.graphiql import graphiql_routes
from app.web.guard import BodyTooLarge, Guard, body_too_large
from app.web.health import check_erasure_key, erasure_key_refusal, healthz, readyz
from app.web.observability import Metrics, Observability

logger = logging.getLogger(__name__)


class State(TypedDict):
    settings: Settings
    driver: AsyncDriver
    service: IdentityService
    feed: ChangeFeed  # the change feed: GraphQL `changes`, REST /changes
    metrics: Metrics
    erasure_key: ErasureKey
    webhook_events: WebhookEventRepository  # the CRM webhook's replay records, shared by every replica


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
) -> RetentionScheduler:
    """The automatic retention task (app/bulk/retention.py); not started yet. Always there: without [retention] it
    purges nothing but still trims the change log to [audit] keep_days (default 400), daily. It takes no lease before
    the database has accepted this process's erasure key."""
    from app.db.delivery import DELIVERY_NAME
    from app.db.maintenance import MaintenanceRepository
    from app.db.retention import RetentionRepository

    database = settings.neo4j_database
    return RetentionScheduler(
        RetentionRepository(
            driver,
            database=database,
            timeout_s=settings.query_timeout_s,
            keep_undelivered=DELIVERY_NAME if settings.change_webhook_url else None,
        ),
        service,
        MaintenanceRepository(driver, database=database, timeout_s=max(settings.query_timeout_s, 60.0)),
        service.strategy.retention,
        lease_s=settings.retention_lease_s,
        audit=service.strategy.audit,
        metrics=RetentionMetrics(metrics.registry),
        ready=lambda: key.checked,
    )


def _deliverer(
    delivery: Delivery | None, settings: Settings, driver: AsyncDriver, log: ChangeLog, metrics: Metrics
) -> ChangeDeliverer | None:
    """The change feed's outbound delivery (app/bulk/delivery.py), when IDGRAPH_CHANGE_WEBHOOK_URL is set; not
    started yet."""
    from app.bulk.endpoint import WebhookEndpoint
    from app.db.delivery import DeliveryRepository

    if delivery is None:
        return None
    return ChangeDeliverer(
        DeliveryRepository(driver, database=settings.neo4j_database, timeout_s=settings.query_timeout_s),
        log,
        WebhookEndpoint(delivery.url, delivery.secret, timeout_s=delivery.timeout_s),
        delivery,
        metrics=DeliveryMetrics(metrics.registry),
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """The HTTP app. Strategy and tokens are read here, so a bad file stops start-up with a message naming it."""
    resolved = settings if settings is not None else Settings.from_env()
    # The driver logs query parameters (identity values: personal data) at DEBUG; keep it above that whoever
    # configures logging in the hosting process.
    logging.getLogger("neo4j").setLevel(max(logging.getLogger("neo4j").level, logging.INFO))
    strategy = resolved.strategy()
    delivery = resolved.change_delivery()  # None without IDGRAPH_CHANGE_WEBHOOK_URL; a bad setting stops start-up
    tokens = TokenFile(resolved.tokens_file)  # read again every few seconds: a revoked token is refused soon
    erasure_key = resolved.erasure_key()
    metrics = Metrics()  # per app: several apps in one process never share counters

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        driver = create_driver(resolved)
        checked_key = ErasureKey(erasure_key)  # checked against the database's before it hashes
        repo = Neo4jRepository.configured(driver, resolved, strategy, checked_key)
        service = IdentityService(repo, strategy, checked_key, max_component_nodes=resolved.max_component_nodes)
        # Checked now when the database answers, so the first request can hash; else as soon as it does.
        await erasure_key_refusal(checked_key, driver, resolved)
        key_check = asyncio.create_task(check_erasure_key(checked_key, driver, resolved))
        metrics.count_contested = service.contested_count
        retention = _retention(resolved, driver, service, metrics, checked_key)
        retention.start()
        deliverer = _deliverer(delivery, resolved, driver, repo, metrics)  # None without a change webhook
        if deliverer is not None:
            deliverer.start()
        try:
            yield {
                "settings": resolved,
                "driver": driver,
                "service": service,
                "feed": ChangeFeed(repo),
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
            await retention.stop()
            if deliverer is not None:
                await deliverer.stop()
            metrics.count_contested = None
            await driver.close()

    # Never strawberry's own GraphiQL page, which loads React and GraphiQL from a CDN: graphiql_routes() serves one.
    graphql = graphql_app(graphiql=False, introspection=resolved.introspection)
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *(graphiql_routes() if resolved.graphiql else []),  # first: a browser's GET of /graphql gets the page
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
