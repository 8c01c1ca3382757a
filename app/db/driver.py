"""Driver construction, connectivity checks and translation of driver errors into AppErrors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import neo4j
from neo4j import AsyncDriver, AsyncGraphDatabase, Query
from neo4j import exceptions as neo4j_errors

from app.config import Settings
from app.errors import AppError, DatabaseUnavailable, InvalidInput, Timeout


def create_driver(settings: Settings, *, max_retry_time_s: float = 15.0) -> AsyncDriver:
    auth = (settings.neo4j_user, settings.neo4j_password or "") if settings.neo4j_user else None
    return AsyncGraphDatabase.driver(
        settings.neo4j_uri,
        auth=auth,
        max_connection_pool_size=50,
        connection_timeout=settings.connect_timeout_s,
        connection_acquisition_timeout=settings.connect_timeout_s + settings.query_timeout_s,
        max_transaction_retry_time=max_retry_time_s,
        # Deadlocks between writers of overlapping identities are expected and resolved by retrying; the
        # driver's default first wait of 1 s (doubling) made a 16-writer test 40x slower than these short waits.
        initial_retry_delay=0.02,
        retry_delay_multiplier=2.0,
        retry_delay_jitter_factor=0.5,
        liveness_check_timeout=30.0,
        notifications_min_severity="OFF",
    )


async def ping(settings: Settings, timeout_s: float = 2.0) -> str | None:
    """None when Bolt answers a query within the timeout, else the reason it did not."""
    driver = create_driver(settings, max_retry_time_s=0)
    try:
        async with asyncio.timeout(timeout_s):
            await driver.execute_query(Query("RETURN 1", timeout=timeout_s), database_=settings.neo4j_database)
        return None
    except TimeoutError:
        return f"no answer from {settings.neo4j_uri} within {timeout_s:g}s"
    except (neo4j_errors.DriverError, neo4j_errors.Neo4jError, OSError) as exc:
        return f"{settings.neo4j_uri}: {type(exc).__name__}: {exc}"
    finally:
        await driver.close()


def translate(exc: BaseException) -> AppError | None:
    """The AppError a driver failure means for a client, or None when it is not a driver failure."""
    if isinstance(exc, neo4j_errors.ServiceUnavailable | neo4j_errors.SessionExpired):
        return DatabaseUnavailable("the identity database is unavailable")
    if isinstance(exc, neo4j_errors.ClientError) and (exc.code or "").endswith("InvalidBookmark"):
        return InvalidInput("consistencyToken is not a token this service issued")
    if isinstance(exc, neo4j_errors.ClientError) and (exc.code or "").endswith(
        ("TransactionTimedOut", "TransactionTimedOutClientConfiguration")
    ):
        return Timeout("the identity database did not answer in time")
    if isinstance(exc, neo4j_errors.TransientError):
        return DatabaseUnavailable("the identity database is busy; retry")
    if isinstance(exc, neo4j_errors.DriverError | OSError):
        return DatabaseUnavailable("the identity database is unavailable")
    return None


@contextlib.asynccontextmanager
async def translated_errors(timeout_s: float) -> AsyncIterator[None]:
    """Run a unit of database work with a time budget, turning driver failures into AppErrors."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise Timeout("the identity database did not answer in time") from None
    except (neo4j_errors.DriverError, neo4j_errors.Neo4jError, OSError) as exc:
        app_error = translate(exc)
        if app_error is None:
            raise
        raise app_error from exc


__all__ = ["AsyncDriver", "create_driver", "neo4j", "ping", "translate", "translated_errors"]
