"""RetentionRepository: the retention lease and the receipts of automatic retention runs, on Neo4j.

Every write is one managed transaction that write-locks the lease node before reading it (cypher/*retention*); the
lease itself is app/db/leases.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from neo4j import AsyncDriver

from app.db import records
from app.db.leases import LeaseRepository, time_or_none
from app.domain.retention import RetentionRun, RunStatus

T = TypeVar("T")

LEASE_NAME = "retention"


class RetentionRepository(LeaseRepository):
    lease_name = LEASE_NAME

    def __init__(
        self,
        driver: AsyncDriver,
        *,
        database: str = "neo4j",
        timeout_s: float = 10.0,
        keep_undelivered: str | None = None,
    ) -> None:
        """`keep_undelivered`: the name of the change webhook's delivery state (app/db/delivery.py) when this process
        delivers the change feed; trimming then keeps the events it has not delivered yet and those of parked
        batches, however old."""
        super().__init__(driver, database=database, timeout_s=timeout_s)
        self._keep_undelivered = keep_undelivered

    async def begin_run(
        self,
        replica: str,
        run_id: str,
        *,
        now: datetime,
        expires_at: datetime,
        due_before: datetime,
        inactive_days: int | None,
    ) -> bool:
        """Record the start of a run, and renew the lease to `expires_at`, if `replica` holds the lease and the
        last run started by `due_before`."""
        rows = await self._run(
            "begin_retention_run",
            write=True,
            lease=LEASE_NAME,
            replica=replica,
            now=now,
            expires_at=expires_at,
            due_before=due_before,
            run_id=run_id,
            inactive_days=inactive_days,
        )
        return bool(rows and rows[0]["started"])

    async def finish_run(self, run: RetentionRun) -> RetentionRun:
        """Write the run's outcome onto its receipt; returns the receipt as stored."""
        rows = await self._run(
            "finish_retention_run",
            write=True,
            lease=LEASE_NAME,
            run_id=run.id,
            finished_at=run.finished_at,
            status=str(run.status),
            candidates=run.candidates,
            profiles_deleted=run.profiles_deleted,
            identities_deleted=run.identities_deleted,
            failed=run.failed,
            error=run.error,
            changes_trimmed=run.changes_trimmed,
        )
        return _run_from(rows[0]["run"])

    async def trim_changes(self, replica: str, *, now: datetime, before: datetime, limit: int) -> int | None:
        """Delete up to `limit` of the oldest change log events written before `before`, and count them on the lease
        node, if `replica` holds the lease; the number deleted, or None when it does not hold it."""
        rows = await self._run(
            "trim_changes",
            write=True,
            lease=LEASE_NAME,
            replica=replica,
            now=now,
            before=before,
            limit=limit,
            delivery=self._keep_undelivered,
        )
        return int(rows[0]["trimmed"]) if rows else None

    async def runs(self, limit: int = 10) -> list[RetentionRun]:
        """The latest runs, newest first."""
        rows = await self._run("retention_runs", write=False, limit=limit)
        return [_run_from(r["run"]) for r in rows]


def _run_from(row: Mapping[str, Any]) -> RetentionRun:
    return RetentionRun(
        id=str(row["id"]),
        replica=str(row["replica"]),
        started_at=records.to_datetime(row["started_at"]),
        inactive_days=None if row.get("inactive_days") is None else int(row["inactive_days"]),
        status=RunStatus(row["status"]),
        finished_at=time_or_none(row.get("finished_at")),
        candidates=int(row.get("candidates") or 0),
        profiles_deleted=int(row.get("profiles_deleted") or 0),
        identities_deleted=int(row.get("identities_deleted") or 0),
        failed=int(row.get("failed") or 0),
        error=None if row.get("error") is None else str(row["error"]),
        changes_trimmed=int(row.get("changes_trimmed") or 0),
    )
