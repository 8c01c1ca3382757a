"""Trimming the change log to [audit] keep_days: part of every automatic retention run (app/bulk/retention.py), on
its lease, in bounded batches. Each batch is one transaction that deletes the oldest events and adds their number to
the lease node, so the count outlives them (`idgraph purge --status`, /metrics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

TRIM_BATCH = 1000  # events per transaction


class ChangeTrimmer(Protocol):
    async def trim_changes(self, replica: str, *, now: datetime, before: datetime, limit: int) -> int | None:
        """Delete up to `limit` of the oldest events written before `before` if `replica` holds the lease; the
        number deleted, or None when it does not hold it."""
        ...


@dataclass
class TrimReport:
    """Filled in as batches commit, so a run stopped halfway still reports what it trimmed."""

    before: datetime
    trimmed: int = 0
    lease_lost: bool = False


def trim_cutoff(now: datetime, keep_days: int) -> datetime:
    return now - timedelta(days=keep_days)


async def trim_change_log(
    store: ChangeTrimmer,
    replica: str,
    report: TrimReport,
    *,
    clock: Callable[[], datetime],
    batch: int = TRIM_BATCH,
) -> TrimReport:
    """Trim batch after batch until a batch is not whole (nothing older is left) or the lease is gone."""
    while True:
        trimmed = await store.trim_changes(replica, now=clock(), before=report.before, limit=batch)
        if trimmed is None:
            report.lease_lost = True
            return report
        report.trimmed += trimmed
        if trimmed < batch:
            return report
