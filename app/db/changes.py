"""The change log on Neo4j: recording a transaction's events (the last statement of every write transaction that
changes something) and reading them back (the ChangeLog port). Events hold ids, never values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from neo4j import AsyncTransaction

from app.db import records
from app.db.base import RepositoryBase
from app.db.contest import ContestChange
from app.db.statements import fetch
from app.domain.changes import Audit, ChangeEvent, ChangeType


@dataclass(frozen=True)
class Change:
    """An event before it has a seq: what one transaction changed."""

    type: ChangeType
    profile_ids: tuple[str, ...]
    customer_before: str | None = None
    customer_after: str | None = None


async def record_changes(
    tx: AsyncTransaction, changes: Sequence[Change], audit: Audit, now: datetime | None = None
) -> None:
    """Append `changes` to the log in `tx` (cypher/record_changes.cypher); nothing, and no lock, when there are none.
    Call it last in the transaction: the sequence's lock it takes serializes committing writers until commit."""
    if not changes:
        return
    await fetch(
        tx,
        "record_changes",
        events=[
            {
                "type": str(c.type),
                "profile_ids": list(c.profile_ids),
                "customer_before": c.customer_before,
                "customer_after": c.customer_after,
            }
            for c in changes
        ],
        actor=audit.actor,
        request_id=audit.request_id,
        reason=audit.reason,
        now=now,
    )


def saturations(contested: ContestChange) -> list[Change]:
    """What a re-evaluation of the contested rule changed (app/db/contest.py), each naming the identity's holders:
    IDENTITY_SATURATED for an identity that stopped linking (contested now, or released over the fan-out limit and
    saturated instead), IDENTITY_RELEASED for one that links again (its holders' customers may join)."""
    stopped = {**contested.contested, **contested.saturated}
    return [
        Change(ChangeType.IDENTITY_SATURATED, tuple(sorted(holders)))
        for _, holders in sorted(stopped.items())
        if holders
    ] + [
        Change(ChangeType.IDENTITY_RELEASED, tuple(sorted(holders)))
        for _, holders in sorted(contested.released.items())
        if holders
    ]


def _event_from(row: Mapping[str, Any]) -> ChangeEvent:
    return ChangeEvent(
        seq=int(row["seq"]),
        type=ChangeType(row["type"]),
        profile_ids=tuple(str(p) for p in row["profile_ids"] or ()),
        customer_before=row["customer_before"],
        customer_after=row["customer_after"],
        actor=str(row["actor"]),
        request_id=row["request_id"],
        reason=row["reason"],
        at=records.to_datetime(row["at"]),
    )


class ChangeLogRepository(RepositoryBase):
    """The ChangeLog port (app/services/ports.py)."""

    async def changes(
        self,
        *,
        after: int,
        limit: int,
        types: frozenset[ChangeType] | None = None,
        profile_ids: Sequence[str] | None = None,
        customer_id: str | None = None,
        through: int | None = None,
    ) -> list[ChangeEvent]:
        rows = await self._one(
            "changes",
            leader=True,  # a feed must not lag: a reader following it asks again right after a write
            after=after,
            limit=limit,
            types=sorted(str(t) for t in types) if types is not None else None,
            profile_ids=list(profile_ids) if profile_ids is not None else None,
            customer_id=customer_id,
            through=through,
        )
        return [_event_from(r["change"]) for r in rows]

    async def last_change(self) -> int:
        rows = await self._one("last_change", leader=True)
        return int(rows[0]["last"]) if rows else 0
