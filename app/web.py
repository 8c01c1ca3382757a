"""The only place that builds the Starlette app: health, readiness, and (later) /graphql, REST and /inspect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.config import Settings
from app.db.driver import AsyncDriver, create_driver
from app.db.schema import schema_state

logger = logging.getLogger(__name__)


class State(TypedDict):
    settings: Settings
    driver: AsyncDriver


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
    return JSONResponse({"status": "ready", "schema_version": max(state.applied, default=0)})


def create_app(settings: Settings | None = None) -> Starlette:
    resolved = settings if settings is not None else Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        driver = create_driver(resolved)
        try:
            yield {"settings": resolved, "driver": driver}
        finally:
            await driver.close()

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz)],
        lifespan=lifespan,
    )
