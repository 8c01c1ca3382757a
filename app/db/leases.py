"""A named lease in Neo4j, (:RetentionLease {name}), that one replica at a time holds for a background job: taken,
renewed and released by cypher/*_retention_lease.cypher, each write-locking the lease node before reading it.
Automatic retention (app/db/retention.py) and the change webhook's delivery (app/db/delivery.py) each hold one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from neo4j import AsyncDriver, AsyncTransaction

from app.db import records
from app.db.statements import fetch
from app.db.transactions import run_transaction
from app.domain.retention import Lease


class LeaseRepository:
    """The lease named `lease_name` (a subclass sets it), and one managed transaction per statement."""

    lease_name: str

    def __init__(self, driver: AsyncDriver, *, database: str = "neo4j", timeout_s: float = 10.0) -> None:
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s

    async def _run(self, statement: str, *, write: bool, **params: Any) -> list[dict[str, Any]]:
        async def work(tx: AsyncTransaction) -> list[dict[str, Any]]:
            return await fetch(tx, statement, **params)

        rows, _ = await run_transaction(
            self._driver, work, database=self._database, write=write, budget_s=self._timeout_s
        )
        return rows

    async def acquire_lease(self, replica: str, *, now: datetime, expires_at: datetime) -> tuple[bool, Lease]:
        """Take the lease if it is free, expired or ours (then renewed to `expires_at`); returns (acquired, lease)."""
        rows = await self._run(
            "acquire_retention_lease",
            write=True,
            lease=self.lease_name,
            replica=replica,
            now=now,
            expires_at=expires_at,
        )
        return bool(rows[0]["acquired"]), lease_from(rows[0])

    async def renew_lease(self, replica: str, *, expires_at: datetime) -> bool:
        """Extend the lease if `replica` still holds it; False when another replica has taken it."""
        rows = await self._run(
            "renew_retention_lease", write=True, lease=self.lease_name, replica=replica, expires_at=expires_at
        )
        return int(rows[0]["renewed"]) == 1

    async def release_lease(self, replica: str, *, now: datetime) -> bool:
        rows = await self._run("release_retention_lease", write=True, lease=self.lease_name, replica=replica, now=now)
        return int(rows[0]["released"]) == 1

    async def lease(self) -> Lease | None:
        rows = await self._run("retention_lease", write=False, lease=self.lease_name)
        return lease_from(rows[0]) if rows else None


def time_or_none(value: Any) -> datetime | None:
    return None if value is None else records.to_datetime(value)


def lease_from(row: Mapping[str, Any]) -> Lease:
    """A lease as the lease statements return it (holder, expires_at, last_run_started_at, the change log's trim
    count)."""
    return Lease(
        holder=None if row["holder"] is None else str(row["holder"]),
        expires_at=time_or_none(row["expires_at"]),
        last_run_started_at=time_or_none(row["last_run_started_at"]),
        changes_trimmed=int(row.get("changes_trimmed") or 0),
        changes_trimmed_at=time_or_none(row.get("changes_trimmed_at")),
    )
