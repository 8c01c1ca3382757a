"""WebhookEventRepository: the CRM webhook's replay records in Neo4j, shared by every replica (cypher/*webhook_event*).

A record (:WebhookEvent {event_id, at}) says "this event id was processed at `at`". A claim creates it in a write
transaction under the event id's uniqueness constraint, so of two replicas processing the same event at once one
wins and the other sees a replay. Records older than the replay window are taken over by a new claim and deleted in
bounded batches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncTransaction

from app.db.queries import query
from app.db.transactions import run_transaction

T = TypeVar("T")

CLEANUP_BATCH = 1000


async def _single(tx: AsyncTransaction, name: str, **params: Any) -> dict[str, Any]:
    result = await tx.run(query(name), params)
    record = await result.single(strict=True)
    return record.data()


class WebhookEventRepository:
    def __init__(self, driver: AsyncDriver, *, database: str = "neo4j", timeout_s: float = 5.0) -> None:
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s

    async def _write(self, work: Callable[[AsyncTransaction], Awaitable[T]]) -> T:
        value, _ = await run_transaction(
            self._driver, work, database=self._database, write=True, budget_s=self._timeout_s
        )
        return value

    async def claim(self, event_id: str, *, now: datetime, expired_before: datetime) -> datetime | None:
        """Record the event as processed now; None when a record of it newer than `expired_before` exists (a
        replay). Returns the claim's time, which `release` needs."""

        async def work(tx: AsyncTransaction) -> datetime | None:
            row = await _single(tx, "claim_webhook_event", event_id=event_id, now=now, expired_before=expired_before)
            return now if row["claimed"] else None

        return await self._write(work)

    async def release(self, event_id: str, *, claimed_at: datetime) -> bool:
        """Forget a claim whose delivery did nothing, so a redelivery is decided afresh; False when another claim
        holds the record by now."""

        async def work(tx: AsyncTransaction) -> bool:
            row = await _single(tx, "release_webhook_event", event_id=event_id, at=claimed_at)
            return int(row["released"]) > 0

        return await self._write(work)

    async def delete_expired(self, *, expired_before: datetime, limit: int = CLEANUP_BATCH) -> int:
        """Delete up to `limit` records older than `expired_before`; returns how many went."""

        async def work(tx: AsyncTransaction) -> int:
            row = await _single(tx, "delete_expired_webhook_events", expired_before=expired_before, limit=limit)
            return int(row["deleted"])

        return await self._write(work)
