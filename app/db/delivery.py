"""DeliveryRepository: the outbound change delivery's lease, delivered cursor and parked batches, on Neo4j.

The lease is a named lease of the same kind as automatic retention's, (:RetentionLease {name: "change-webhook"}),
taken, renewed and released by the same statements (cypher/*_retention_lease.cypher). Moving the cursor and
parking a batch are fenced by it: they write only while the replica holds the unexpired lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.db import records
from app.db.leases import LeaseRepository
from app.domain.delivery import DeliveryState, ParkedBatch, batch_id

LEASE_NAME = "change-webhook"
DELIVERY_NAME = "webhook"  # the one delivery target (IDGRAPH_CHANGE_WEBHOOK_URL)
MAX_PARKED_LISTED = 10_000


class DeliveryRepository(LeaseRepository):
    lease_name = LEASE_NAME  # the lease itself: app/db/leases.py, retention's statements under another name

    # -- the cursor and parked batches --------------------------------------------------------------------------

    async def state(self) -> DeliveryState:
        rows = await self._run("change_delivery", write=False, delivery=DELIVERY_NAME)
        return DeliveryState(delivered_seq=int(rows[0]["delivered_seq"]), parked=int(rows[0]["parked"]))

    async def advance(self, replica: str, *, now: datetime, seq: int) -> bool:
        """Record the events up to `seq` as delivered, if `replica` holds the lease; False when it does not."""
        rows = await self._run(
            "advance_change_delivery",
            write=True,
            lease=LEASE_NAME,
            delivery=DELIVERY_NAME,
            replica=replica,
            now=now,
            seq=seq,
        )
        return bool(rows[0]["advanced"])

    async def park(self, replica: str, batch: ParkedBatch) -> bool:
        """Park the batch and move the cursor past it, if `replica` holds the lease; False when it does not."""
        rows = await self._run(
            "park_change_batch",
            write=True,
            lease=LEASE_NAME,
            delivery=DELIVERY_NAME,
            replica=replica,
            now=batch.parked_at,
            id=batch.id,
            first_seq=batch.first_seq,
            last_seq=batch.last_seq,
            events=batch.events,
            attempts=batch.attempts,
            last_error=batch.last_error,
        )
        return bool(rows[0]["parked"])

    async def parked(self, batch: str | None = None, *, limit: int = MAX_PARKED_LISTED) -> list[ParkedBatch]:
        """The parked batches in cursor order, or only the one whose id is `batch`."""
        rows = await self._run("parked_change_batches", write=False, id=batch, limit=limit)
        return [_parked_from(r["batch"]) for r in rows]

    async def settle(self, batch: ParkedBatch, *, error: str | None, now: datetime) -> bool:
        """The outcome of redelivering `batch`: delivered (error None) removes it, else one more failed attempt."""
        rows = await self._run("settle_parked_change_batch", write=True, id=batch.id, error=error, now=now)
        return int(rows[0]["settled"]) == 1


def _parked_from(row: Mapping[str, Any]) -> ParkedBatch:
    first, last = int(row["first_seq"]), int(row["last_seq"])
    assert row["id"] == batch_id(first, last)
    return ParkedBatch(
        first_seq=first,
        last_seq=last,
        events=int(row["events"]),
        attempts=int(row["attempts"]),
        last_error=str(row["last_error"]),
        parked_at=records.to_datetime(row["parked_at"]),
        retried_at=None if row.get("retried_at") is None else records.to_datetime(row["retried_at"]),
    )
