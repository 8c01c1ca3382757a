"""The change log of the in-memory repository (tests/unit/fake_repository.py): the ChangeLog port over a list, and
the events its writes record, with the semantics of app/db (docs/changes.md): an upsert's PROFILE_CREATED,
PROFILE_UPDATED (an attribute took another value, or a row by record gave a new identity), IDENTITY_LINKED (new
identities through rows by id only), IDENTITY_SATURATED (naming the holders); MERGE with customer before and after;
UNMERGE; IDENTITY_UNLINKED; an erasure's CUSTOMER_ERASED / PROFILE_ERASED / RETENTION_PURGE with customer_before;
nothing for a write that changed nothing or was refused. Seqs are 1, 2, 3... in call order (the fake is sequential)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.domain.changes import Audit, ChangeEvent, ChangeType
from app.domain.model import IdentityKey, Scalar
from app.services.ports import ProfileWrite, WriteOutcome


@dataclass(frozen=True)
class Draft:
    """An event before it has a seq."""

    type: ChangeType
    profile_ids: tuple[str, ...]
    customer_before: str | None = None
    customer_after: str | None = None


class FakeChangeLog:
    def __init__(self) -> None:
        self.events: list[ChangeEvent] = []

    def record(self, drafts: Iterable[Draft], audit: Audit, now: datetime | None) -> None:
        for d in drafts:
            self.events.append(
                ChangeEvent(
                    seq=len(self.events) + 1,
                    type=d.type,
                    profile_ids=d.profile_ids,
                    customer_before=d.customer_before,
                    customer_after=d.customer_after,
                    actor=audit.actor,
                    request_id=audit.request_id,
                    reason=audit.reason,
                    at=now or datetime.now(UTC),
                )
            )

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
        found: list[ChangeEvent] = []
        for e in self.events:
            beyond = through is not None and e.seq > through
            if e.seq <= after or beyond or (types is not None and e.type not in types):
                continue
            if profile_ids is not None or customer_id is not None:
                named = profile_ids is not None and bool(set(profile_ids) & set(e.profile_ids))
                of_customer = customer_id is not None and customer_id in (e.customer_before, e.customer_after)
                if not (named or of_customer):
                    continue
            found.append(e)
        return found[:limit]

    async def last_change(self) -> int:
        return self.events[-1].seq if self.events else 0


def upsert_drafts(
    rows: Sequence[ProfileWrite],
    outcomes: Sequence[WriteOutcome | None],
    attributes_before: Mapping[str, Mapping[str, Scalar]],
    attributes_after: Mapping[str, Mapping[str, Scalar]],
    edges_before: Iterable[tuple[str, IdentityKey]],
    edges_after: Iterable[tuple[str, IdentityKey]],
    newly_stopped: Mapping[IdentityKey, Sequence[str]],
    customers: Mapping[str, str],
) -> list[Draft]:
    """An upsert's events, as app/db/writes.py derives them from write_profiles.cypher's answer."""
    gained = {pid for pid, _ in set(edges_after) - set(edges_before)}
    modes: dict[str, set[str]] = {}
    created: dict[str, bool] = {}
    for row, outcome in zip(rows, outcomes, strict=True):
        if outcome is not None:
            modes.setdefault(outcome.profile_id, set()).add(row.mode)
            created[outcome.profile_id] = created.get(outcome.profile_id, False) or outcome.created
    drafts: list[Draft] = []
    for pid, new in sorted(created.items()):
        after = customers.get(pid)
        if new:
            drafts.append(Draft(ChangeType.PROFILE_CREATED, (pid,), customer_after=after))
            continue
        linked_only = modes[pid] == {"id"}
        changed = dict(attributes_before.get(pid, {})) != dict(attributes_after.get(pid, {}))
        if pid in gained and linked_only:
            drafts.append(Draft(ChangeType.IDENTITY_LINKED, (pid,), customer_after=after))
        if changed or (pid in gained and not linked_only):
            drafts.append(Draft(ChangeType.PROFILE_UPDATED, (pid,), customer_after=after))
    drafts += [
        Draft(ChangeType.IDENTITY_SATURATED, tuple(sorted(holders)))
        for _, holders in sorted(newly_stopped.items())
        if holders
    ]
    return drafts
