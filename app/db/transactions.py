"""Transactions with retries we control: deadlocks are retried quickly within a time budget, while an
unreachable database fails fast (DATABASE_UNAVAILABLE within ~2 s) instead of being retried for the budget.

The driver's managed transactions retry every retryable error, "service unavailable" included, for the whole
max_transaction_retry_time, so a request to a stopped database would hang for that long. Work functions must be
idempotent: they may run more than once (after a deadlock, or when a commit's outcome is unknown).

Every attempt also carries the rest of the time budget to Neo4j as its transaction timeout: when the client gives
up, the server terminates the transaction too, instead of running it (and holding its locks) to the end.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString, TypeVar

from neo4j import AsyncDriver, AsyncTransaction, Bookmarks, Query
from neo4j import exceptions as neo4j_errors

from app.db.driver import translate
from app.errors import Conflict, DatabaseUnavailable, Timeout

logger = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncTransaction], Awaitable[T]]

_UNAVAILABLE = (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired, OSError)

# The shortest server-side timeout an attempt asks for: the driver rounds to milliseconds, and 0 means "no timeout".
_MIN_SERVER_TIMEOUT_S = 0.001


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
        lambda remaining_s: _attempt(driver, work, database, write, bookmarks, remaining_s),
        budget_s=budget_s,
        unavailable_s=unavailable_s,
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
    leader: bool = False,
) -> list[dict[str, Any]]:
    """One read statement as an auto-commit query: a single round trip (no BEGIN/COMMIT), same retry policy. In a
    cluster it goes to a secondary, unless `leader` (a read that must not lag the last write, whatever it was).

    For statements that return maps, lists and scalars only (no nodes or relationships): the rows are the records'
    values as the driver decoded them, without Record.data()'s copy of every nested value (a third of the driver's
    time on a resolve)."""

    async def attempt(remaining_s: float) -> tuple[list[dict[str, Any]], Bookmarks]:
        mode = "WRITE" if leader else "READ"
        async with driver.session(database=database, bookmarks=bookmarks, default_access_mode=mode) as session:
            result = await session.run(Query(query, timeout=remaining_s), params)
            rows = [dict(zip(record.keys(), record.values(), strict=True)) async for record in result]
            return rows, await session.last_bookmarks()

    rows, _ = await _with_retries(attempt, budget_s=budget_s, unavailable_s=unavailable_s)
    return rows


async def _with_retries(
    attempt: Callable[[float], Awaitable[tuple[T, Bookmarks]]], *, budget_s: float, unavailable_s: float
) -> tuple[T, Bookmarks]:
    """Run `attempt` until it succeeds, within the budget; it is given the seconds left, its server-side timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    unavailable_since: float | None = None
    delay = 0.02
    attempts = 0
    while True:
        attempts += 1
        try:
            async with asyncio.timeout_at(deadline):
                return await attempt(max(_MIN_SERVER_TIMEOUT_S, deadline - loop.time()))
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
    driver: AsyncDriver, work: Work[T], database: str, write: bool, bookmarks: Bookmarks | None, timeout_s: float
) -> tuple[T, Bookmarks]:
    mode = "WRITE" if write else "READ"
    async with driver.session(database=database, bookmarks=bookmarks, default_access_mode=mode) as session:
        tx = await session.begin_transaction(timeout=timeout_s)
        try:
            value = await work(tx)
            await tx.commit()
        finally:
            if not tx.closed():
                await tx.close()
        return value, await session.last_bookmarks()
