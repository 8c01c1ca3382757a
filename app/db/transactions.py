"""Transactions with retries we control: deadlocks are retried quickly within a time budget, while an
unreachable database fails fast (DATABASE_UNAVAILABLE within ~2 s) instead of being retried for the budget.

The driver's managed transactions retry every retryable error, "service unavailable" included, for the whole
max_transaction_retry_time, so a request to a stopped database would hang for that long. Work functions must be
idempotent: they may run more than once (after a deadlock, or when a commit's outcome is unknown).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString, TypeVar

from neo4j import AsyncDriver, AsyncTransaction, Bookmarks
from neo4j import exceptions as neo4j_errors

from app.db.driver import translate
from app.errors import Conflict, DatabaseUnavailable, Timeout

logger = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncTransaction], Awaitable[T]]

_UNAVAILABLE = (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired, OSError)


class Interfered(Exception):
    """Raised by a work function that finds, once it holds its locks, that a concurrent transaction changed what it
    read before them (a node it locked was deleted meanwhile). The transaction is rolled back and run again."""


async def run_transaction(
    driver: AsyncDriver,
    work: Work[T],
    *,
    database: str,
    write: bool,
    bookmarks: Bookmarks | None = None,
    budget_s: float = 5.0,
    unavailable_s: float = 1.5,
) -> tuple[T, Bookmarks]:
    """Run `work` in one transaction; returns its value and the bookmarks that name the transaction."""
    return await _with_retries(
        lambda: _attempt(driver, work, database, write, bookmarks), budget_s=budget_s, unavailable_s=unavailable_s
    )


async def run_read(
    driver: AsyncDriver,
    query: LiteralString,
    params: dict[str, Any],
    *,
    database: str,
    bookmarks: Bookmarks | None = None,
    budget_s: float = 5.0,
    unavailable_s: float = 1.5,
) -> list[dict[str, Any]]:
    """One read statement as an auto-commit query: a single round trip (no BEGIN/COMMIT), same retry policy.

    For statements that return maps, lists and scalars only (no nodes or relationships): the rows are the records'
    values as the driver decoded them, without Record.data()'s copy of every nested value (a third of the driver's
    time on a resolve)."""

    async def attempt() -> tuple[list[dict[str, Any]], Bookmarks]:
        async with driver.session(database=database, bookmarks=bookmarks, default_access_mode="READ") as session:
            result = await session.run(query, params)
            rows = [dict(zip(record.keys(), record.values(), strict=True)) async for record in result]
            return rows, await session.last_bookmarks()

    rows, _ = await _with_retries(attempt, budget_s=budget_s, unavailable_s=unavailable_s)
    return rows


async def _with_retries(
    attempt: Callable[[], Awaitable[tuple[T, Bookmarks]]], *, budget_s: float, unavailable_s: float
) -> tuple[T, Bookmarks]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    unavailable_since: float | None = None
    delay = 0.02
    attempts = 0
    while True:
        attempts += 1
        try:
            async with asyncio.timeout_at(deadline):
                return await attempt()
        except TimeoutError:
            raise Timeout("the identity database did not answer in time") from None
        except _UNAVAILABLE as exc:
            now = loop.time()
            unavailable_since = now if unavailable_since is None else unavailable_since
            if now - unavailable_since >= unavailable_s or now >= deadline:
                raise DatabaseUnavailable("the identity database is unavailable") from exc
            # A stale pooled connection after a database restart fails once; a fresh one usually works.
        except Interfered as exc:
            if loop.time() >= deadline:
                raise Conflict("concurrent writes to the same records kept interfering; retry") from exc
            unavailable_since = None
            logger.debug("interfered on attempt %d; retrying", attempts)
        except neo4j_errors.Neo4jError as exc:
            if not exc.is_retryable() or loop.time() >= deadline:
                app_error = translate(exc)
                if app_error is None:
                    raise
                raise app_error from exc
            unavailable_since = None
            logger.debug("transient %s on attempt %d; retrying", exc.code, attempts)
        except neo4j_errors.DriverError as exc:
            app_error = translate(exc)
            if app_error is None:
                raise
            raise app_error from exc
        now = loop.time()
        wait = min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - now))
        if unavailable_since is not None:  # never sleep past the unavailability window: answer within it
            wait = min(wait, max(0.0, unavailable_since + unavailable_s - now))
        await asyncio.sleep(wait)
        delay = min(delay * 2, 0.5)


async def _attempt(
    driver: AsyncDriver, work: Work[T], database: str, write: bool, bookmarks: Bookmarks | None
) -> tuple[T, Bookmarks]:
    mode = "WRITE" if write else "READ"
    async with driver.session(database=database, bookmarks=bookmarks, default_access_mode=mode) as session:
        tx = await session.begin_transaction()
        try:
            value = await work(tx)
            await tx.commit()
        finally:
            if not tx.closed():
                await tx.close()
        return value, await session.last_bookmarks()
