"""Writes: upserts (suppression list and identity cap checked in the same transaction), merge, unmerge,
unlink."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from neo4j import AsyncTransaction

from app.db import records
from app.db.changes import Change, record_changes, saturations
from app.db.contest import ContestChange, contest
from app.db.queries import query
from app.db.reads import ReadRepository
from app.db.snapshots import snapshot_from
from app.db.statements import fetch
from app.db.transactions import Interfered
from app.domain.changes import Audit, ChangeType
from app.domain.model import (
    IdentityKey,
)
from app.services.ports import (
    ProfileWrite,
    Snapshot,
    SuppressedMeanwhile,
    TooManyIdentities,
    WriteOutcome,
)


class WriteRepository(ReadRepository):
    async def upsert_profiles(
        self,
        rows: Sequence[ProfileWrite],
        *,
        now: datetime,
        max_profiles_per_identity: int,
        snapshot_nodes: int | None = None,
        max_identities_per_profile: int = 0,
        contest_limits: Mapping[str, int] | None = None,
        audit: Audit,
    ) -> tuple[list[WriteOutcome | None], str, Snapshot | None]:
        # Locks are taken profiles first, then identities, each in sorted order, to keep deadlocks rare (the
        # transaction is retried on the ones that still happen). One statement writes; with the contested rule on,
        # a second one locks every identity the written profiles hold and re-evaluates it (app/db/contest.py); a
        # last, optional one reads the upserted profiles' customers back inside the same transaction.
        order = sorted(
            range(len(rows)),
            key=lambda n: (
                rows[n].mode,
                rows[n].source,
                rows[n].source_id or "",
                rows[n].profile_id or "",
                n,  # rows of one record keep their order: the last one wins
            ),
        )
        profile_rows: list[dict[str, Any]] = []
        identities: dict[IdentityKey, dict[str, Any]] = {}
        holders: dict[IdentityKey, dict[tuple[str, ...], list[Any]]] = {}  # per identity: profile -> [position, raw]
        for position, n in enumerate(order):
            row = rows[n]
            attributes, timed = records.attribute_changes(row.attributes)
            profile_rows.append(
                {
                    "index": n,
                    "mode": row.mode,
                    "new_id": row.new_id,
                    "profile_id": row.profile_id,
                    "source": row.source,
                    "source_id": row.source_id,
                    "attributes": attributes,
                    "timed": timed,
                }
            )
            profile = _profile_key(row)
            for ident, hashed in zip(row.identities, row.suppression_hashes, strict=True):
                key = IdentityKey(ident.key, ident.value)
                entry = identities.get(key)
                if entry is None:
                    entry = identities[key] = {
                        "key": ident.key,
                        "value": ident.value,
                        "rule": str(ident.rule),
                        "rule_version": ident.rule_version,
                        "blocked": False,
                        "hash": hashed,
                    }
                    holders[key] = {}
                entry["blocked"] = entry["blocked"] or key in row.blocked
                holders[key].setdefault(profile, [position, ident.raw])  # two rows of one profile: the first wins
        identity_rows = [{**identities[k], "holders": list(holders[k].values())} for k in sorted(identities)]

        async def work(tx: AsyncTransaction) -> tuple[list[WriteOutcome | None], Snapshot | None]:
            result = await tx.run(
                query("write_profiles"),
                rows=profile_rows,
                identities=identity_rows,
                limit=max_profiles_per_identity,
                now=now,
            )
            written = await result.single(strict=True)
            if not written["aligned"]:  # cannot happen: the statement keeps $rows' order (it says why it checks)
                raise RuntimeError("write_profiles returned its profiles out of the order of its rows")
            profiles, stored_identities = written["profiles"], written["identities"]
            if any(p["gone"] for p in profiles) or any(i["gone"] for i in stored_identities):
                raise Interfered()  # deleted while this waited for its lock: the next try sees the deletion
            named = sorted({r.record_hash for r in rows if r.record_hash is not None})
            erased = await fetch(tx, "suppressed_hashes", hashes=named) if named else []
            suppressed = frozenset(str(r["hash"]) for r in erased) | frozenset(
                i["hash"] for i in stored_identities if i["suppressed"]
            )
            if suppressed:
                raise SuppressedMeanwhile(suppressed)
            outcomes: list[WriteOutcome | None] = [None] * len(rows)
            for p in profiles:
                outcomes[p["index"]] = WriteOutcome(p["profile_id"], bool(p["created"]))
            if max_identities_per_profile > 0:
                await _refuse_too_many_identities(tx, outcomes, max_identities_per_profile)
            contested = await contest(
                tx,
                profile_ids=[o.profile_id for o in outcomes if o is not None],
                limits=contest_limits,
                fanout=max_profiles_per_identity,
                now=now,
            )
            snapshot = None
            if snapshot_nodes is not None:
                stored = sorted({o.profile_id for o in outcomes if o is not None})
                snapshot = snapshot_from(
                    (
                        await fetch(
                            tx,
                            "profiles_snapshot",
                            profile_ids=stored,
                            max_nodes=snapshot_nodes,
                            max_links=self._max_links,
                        )
                    )[0],
                    snapshot_nodes,
                )
            changes = _upsert_changes(rows, profiles, stored_identities, snapshot, contested)
            await record_changes(tx, changes, audit, now)  # last: see cypher/record_changes.cypher
            return outcomes, snapshot

        (outcomes, snapshot), token = await self._write(work, timeout_s=max(self._timeout_s, 60.0))
        return outcomes, token, snapshot

    async def merge_profiles(
        self,
        source_id: str,
        target_id: str,
        *,
        now: datetime,
        by: str,
        reason: str,
        max_nodes: int,
        check: Callable[[Snapshot], None] = lambda snapshot: None,
        audit: Audit,
    ) -> str | None:
        # Both customers are locked whole (profiles and the identities they hold), then read and checked in this
        # transaction: no concurrent write can add a value to either between the check and the merge.
        async def work(tx: AsyncTransaction) -> bool:
            too_large = f"the customers have more than {max_nodes} nodes; merge is refused"
            locked = await self._lock_customers(tx, [source_id, target_id], max_nodes, too_large=too_large)
            if not {source_id, target_id} <= locked:
                return False
            row = (
                await fetch(
                    tx,
                    "profiles_snapshot",
                    profile_ids=[source_id, target_id],
                    max_nodes=max_nodes,
                    max_links=self._max_links,
                )
            )[0]
            snapshot = snapshot_from(row, max_nodes)
            check(snapshot)
            merged = await fetch(
                tx, "merge_profiles", source_id=source_id, target_id=target_id, now=now, by=by, reason=reason
            )
            if merged and merged[0]["created"]:  # a repeated merge changes nothing: no event
                await record_changes(tx, [_merge_change(snapshot, source_id, target_id)], audit, now)
            return bool(merged)

        merged, token = await self._write(work)
        return token if merged else None

    async def suppressed_among(self, hashes: Sequence[str]) -> set[str]:
        rows = await self._query("suppressed_hashes", hashes=list(hashes))
        return {str(r["hash"]) for r in rows}

    async def unmerge_profiles(self, source_id: str, target_id: str, *, audit: Audit) -> tuple[bool, str]:
        async def work(tx: AsyncTransaction) -> bool:
            rows = await fetch(tx, "unmerge_profiles", source_id=source_id, target_id=target_id)
            removed = bool(rows and rows[0]["removed"])
            if removed:
                await record_changes(tx, [Change(ChangeType.UNMERGE, (source_id, target_id))], audit)
            return removed

        return await self._write(work)

    async def unlink_identity(
        self,
        profile_id: str,
        key: IdentityKey,
        *,
        contest_limits: Mapping[str, int] | None = None,
        max_profiles_per_identity: int = 0,
        now: datetime | None = None,
        audit: Audit,
    ) -> tuple[bool, str]:
        # The identity lost a holder, and the profile maybe a value of a max_per_customer key: both re-evaluated
        # (the contested rule) in this transaction, the unlinked identity first locked by the unlink itself.
        async def work(tx: AsyncTransaction) -> bool:
            rows = await fetch(tx, "unlink_identity", profile_id=profile_id, key=key.key, value=key.value)
            removed = bool(rows and rows[0]["removed"])
            if removed:
                contested = await contest(
                    tx,
                    profile_ids=[profile_id],
                    identities=[] if rows[0]["identity_deleted"] else [key],
                    limits=contest_limits,
                    fanout=max_profiles_per_identity,
                    now=now or datetime.now(UTC),
                )
                changes = [Change(ChangeType.IDENTITY_UNLINKED, (profile_id,)), *saturations(contested)]
                await record_changes(tx, changes, audit, now)
            return removed

        return await self._write(work)


async def _refuse_too_many_identities(
    tx: AsyncTransaction, outcomes: Sequence[WriteOutcome | None], limit: int
) -> None:
    """Raises TooManyIdentities (the transaction is rolled back) when a profile the write stored now holds more than
    `limit` identities: counted in the writing transaction, under the profiles' locks, so the limit holds across
    calls and concurrent writers."""
    stored = sorted({o.profile_id for o in outcomes if o is not None})
    over = {
        r["profile_id"]: r["identities"]
        for r in await fetch(tx, "profiles_over_identity_limit", profile_ids=stored, limit=limit)
    }
    if over:
        raise TooManyIdentities(
            {
                n: f"profile {o.profile_id} would hold {over[o.profile_id]} identities, more than the limit of {limit} "
                "per profile; nothing of this input was stored"
                for n, o in enumerate(outcomes)
                if o is not None and o.profile_id in over
            }
        )


def _upsert_changes(
    rows: Sequence[ProfileWrite],
    profiles: Sequence[dict[str, Any]],
    identities: Sequence[dict[str, Any]],
    snapshot: Snapshot | None,
    contested: ContestChange,
) -> list[Change]:
    """An upsert's events (docs/changes.md): PROFILE_CREATED for a profile it created; for an existing one,
    IDENTITY_LINKED when it gained identities through rows naming it by id only (linkIdentities) and
    PROFILE_UPDATED when an attribute took another value or a row by record gave it a new identity; nothing for a
    profile the write left as it was. IDENTITY_SATURATED, naming the holders, for each identity it saturated (fan-out
    limit) or made contested. customer_after: the profile's customer as the snapshot read in the same transaction
    saw it (none without one, i.e. on the bulk path)."""
    gained = {pid for ident in identities for pid in ident["gained"]}
    modes: dict[str, set[str]] = {}
    seen: dict[str, tuple[bool, bool]] = {}  # profile id -> (created, an attribute changed), in row order
    for p in profiles:
        pid = p["profile_id"]
        modes.setdefault(pid, set()).add(rows[p["index"]].mode)
        created, changed = seen.get(pid, (False, False))
        seen[pid] = (created or bool(p["created"]), changed or bool(p["changed"]))
    customers = _customers(snapshot)
    changes: list[Change] = []
    for pid, (created, changed) in seen.items():
        after = customers.get(pid)
        if created:
            changes.append(Change(ChangeType.PROFILE_CREATED, (pid,), customer_after=after))
            continue
        linked_only = modes[pid] == {"id"}
        if pid in gained and linked_only:
            changes.append(Change(ChangeType.IDENTITY_LINKED, (pid,), customer_after=after))
        if changed or (pid in gained and not linked_only):
            changes.append(Change(ChangeType.PROFILE_UPDATED, (pid,), customer_after=after))
    saturated = [tuple(ident["saturated"]) for ident in identities if ident["saturated"]]
    return changes + [Change(ChangeType.IDENTITY_SATURATED, holders) for holders in saturated] + saturations(contested)


def _customers(snapshot: Snapshot | None) -> dict[str, str]:
    """Each seed profile's customer id in a snapshot: the oldest profile of its component (as build_customer)."""
    if snapshot is None:
        return {}
    created = {p.id: p.created_at for p in snapshot.details.profiles}
    found: dict[str, str] = {}
    for seed, part in snapshot.components.items():
        members = [p for p in part.profile_ids if p in created]
        if isinstance(seed, str) and members and not part.truncated:
            found[seed] = min(members, key=lambda p: (created[p], p))
    return found


def _merge_change(snapshot: Snapshot, source_id: str, target_id: str) -> Change:
    """MERGE, with the source's customer before and the merged customer after (read under the merge's locks)."""
    created = {p.id: p.created_at for p in snapshot.details.profiles}

    def oldest(ids: set[str]) -> str | None:
        known = [p for p in ids if p in created]
        return min(known, key=lambda p: (created[p], p)) if known else None

    source = set(snapshot.components[source_id].profile_ids)
    target = set(snapshot.components[target_id].profile_ids)
    return Change(ChangeType.MERGE, (source_id, target_id), oldest(source), oldest(source | target))


def _profile_key(row: ProfileWrite) -> tuple[str, ...]:
    """Rows of a batch with equal keys write one profile."""
    if row.mode == "source":
        return ("source", row.source, row.source_id or "")
    if row.mode == "id":
        return ("id", row.profile_id or "")
    return ("new", row.new_id)
