"""Health and readiness: /healthz (the process is alive) and /readyz (Neo4j answers, the schema is current, the
erasure key is the database's), each within about two seconds."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.keystore import read_stored_key
from app.db.schema import schema_state
from app.erasure_key import ErasureKey
from app.errors import ErasureKeyMismatch, InstallationError

logger = logging.getLogger(__name__)


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
    except InstallationError as exc:  # not the database's fault: say what is missing
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
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
    refusal = await erasure_key_refusal(request.state.erasure_key, driver, settings)
    if refusal is not None:
        return JSONResponse({"status": "unavailable", "reason": refusal}, status_code=503)
    return JSONResponse({"status": "ready", "schema_version": max(state.applied, default=0)})


async def erasure_key_refusal(key: ErasureKey, driver: AsyncDriver, settings: Settings) -> str | None:
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


async def check_erasure_key(key: ErasureKey, driver: AsyncDriver, settings: Settings) -> None:
    """Check the erasure key as soon as the database answers, so this process can hash (a mismatch is kept and
    reported by /readyz and every write)."""
    while await erasure_key_refusal(key, driver, settings) is not None and not key.checked:
        await asyncio.sleep(1.0)
