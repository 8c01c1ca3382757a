"""MaintenanceRepository: storage for the bulk and clean-up commands (demo check, retention candidates,
re-normalization). Runs cypher/ files through the same helpers as Neo4jRepository; each batch is one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncTransaction

from app.db import records
from app.db.changes import Change, record_changes, saturations
from app.db.contest import contest
from app.db.keystore import checked_work
from app.db.statements import fetch, key_params
from app.db.transactions import run_transaction
from app.domain.changes import Audit, ChangeType
from app.domain.fanout import IdentityState
from app.domain.folding import EdgeProps, Fold, FoldEdge, FoldedLink, FoldOutcome, plan_fold
from app.domain.model import IdentityKey, NormalizedIdentity, StoredIdentity
from app.erasure_key import ErasureKey

T = TypeVar("T")

_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


class MaintenanceRepository:
    def __init__(
        self,
        driver: AsyncDriver,
        *,
        database: str = "neo4j",
        timeout_s: float = 60.0,
        erasure_key: ErasureKey | None = None,
    ) -> None:
        """With `erasure_key`, every write transaction first checks it against the database's (ErasureKeyMismatch)."""
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s
        self.erasure_key = erasure_key

    async def _run(self, work: Callable[[AsyncTransaction], Awaitable[T]], *, write: bool) -> T:
        value, _ = await run_transaction(
            self._driver,
            checked_work(work, self.erasure_key if write else None),
            database=self._database,
            write=write,
            budget_s=self._timeout_s,
        )
        return value

    async def _query(self, name: str, **params: Any) -> list[dict[str, Any]]:
        async def work(tx: AsyncTransaction) -> list[dict[str, Any]]:
            return await fetch(tx, name, **params)

        return await self._run(work, write=False)

    # -- demo -------------------------------------------------------------------------------------------------

    async def holds_profiles(self) -> bool:
        return bool(await self._query("any_profile"))

    # -- retention --------------------------------------------------------------------------------------------

    async def inactive_profiles(
        self, before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[tuple[str, datetime]]:
        """Profiles not updated since `before`, oldest first, one page after the cursor (updated_at, id)."""
        after_at, after_id = after if after is not None else (_EARLIEST, "")
        rows = await self._query("inactive_profiles", before=before, after_at=after_at, after_id=after_id, limit=limit)
        return [(str(r["profile_id"]), records.to_datetime(r["updated_at"])) for r in rows]

    # -- re-normalization -------------------------------------------------------------------------------------

    async def next_identity_key(self, after: str) -> str | None:
        rows = await self._query("identity_next_key", after=after)
        return str(rows[0]["key"]) if rows else None

    async def identity_page(self, key: str, after: str, limit: int) -> list[StoredIdentity]:
        rows = await self._query("identity_page", key=key, after=after, limit=limit)
        return [records.identity_from(r) for r in rows]

    async def set_identity_rules(self, identities: Sequence[NormalizedIdentity]) -> int:
        rows = [
            {"key": i.key, "value": i.value, "rule": str(i.rule), "rule_version": i.rule_version} for i in identities
        ]

        async def work(tx: AsyncTransaction) -> int:
            return int((await fetch(tx, "set_identity_rules", identities=rows))[0]["updated"])

        return await self._run(work, write=True) if rows else 0

    async def block_identities(
        self,
        keys: Sequence[IdentityKey],
        *,
        now: datetime,
        contest_limits: Mapping[str, int] | None = None,
        max_profiles_per_identity: int = 0,
    ) -> int:
        """Mark identities blocked and turn their linking edges into observations; returns the edges turned. A
        blocked value no longer counts for the contested rule: its holders' identities are re-evaluated."""

        async def work(tx: AsyncTransaction) -> int:
            edges = int((await fetch(tx, "block_identities", identities=key_params(sorted(keys)), now=now))[0]["edges"])
            await contest(tx, holders_of=keys, limits=contest_limits, fanout=max_profiles_per_identity, now=now)
            return edges

        return await self._run(work, write=True) if keys else 0

    async def fold(
        self,
        folds: Sequence[Fold],
        *,
        limit: int,
        now: datetime,
        dry_run: bool = False,
        contest_limits: Mapping[str, int] | None = None,
        audit: Audit,
    ) -> FoldOutcome:
        """Move every edge of each folded identity onto its target's node (created if needed), one edge per
        (profile, target), saturate targets over the fan-out limit, delete the folded nodes, and re-evaluate the
        contested rule for the targets and every identity of the profiles whose edges moved (a fold of two values of
        a max_per_customer key into one changes their holders' count): one transaction.
        A target on the suppression list (checked under its lock) is never folded onto: the values that would fold
        onto it belong to an erased person and are deleted with their edges. A dry run reads the same and writes
        nothing."""

        async def work(tx: AsyncTransaction) -> FoldOutcome:
            if dry_run:
                hashes = sorted({f.suppression_hash for f in folds})
                suppressed_hashes = {str(r["hash"]) for r in await fetch(tx, "suppressed_hashes", hashes=hashes)}
                suppressed = {f.target.identity for f in folds if f.suppression_hash in suppressed_hashes}
                kept = [f for f in folds if f.target.identity not in suppressed]
                targets = {f.target.identity: f.target for f in kept}
                found = await fetch(tx, "identity_states", identities=key_params(sorted(targets)))
                states = _states(found)
                created = len(set(targets) - set(states))
                for key in set(targets) - set(states):
                    states[key] = IdentityState(0, False, any(f.blocked for f in kept if f.target.identity == key))
                stray: list[IdentityKey] = []
            else:
                found = await fetch(tx, "lock_fold_identities", identities=_lock_rows(folds), now=now)
                suppressed = {IdentityKey(r["key"], r["value"]) for r in found if r["suppressed"]}
                kept = [f for f in folds if f.target.identity not in suppressed]
                targets = {f.target.identity: f.target for f in kept}
                states = _states(r for r in found if IdentityKey(r["key"], r["value"]) in targets)
                created = sum(1 for r in found if r["created"] and not r["suppressed"])
                # A suppressed target this transaction created under its lock holds nothing: it goes too.
                stray = sorted(IdentityKey(r["key"], r["value"]) for r in found if r["created"] and r["suppressed"])
            dropped = len(folds) - len(kept)
            fold_rows = [{"key": f.old.key, "from_value": f.old.value, "to_value": f.target.value} for f in kept]
            edges = [_fold_edge(r) for r in await fetch(tx, "fold_edges", folds=fold_rows)] if fold_rows else []
            plan = plan_fold(edges, targets, states, limit)
            newly_blocked = sorted(f.target.identity for f in kept if f.blocked)
            if dry_run:
                return FoldOutcome(plan, created, len(folds), 0, dropped)
            turned = 0
            if newly_blocked:
                turned = int(
                    (await fetch(tx, "block_identities", identities=key_params(newly_blocked), now=now))[0]["edges"]
                )
            if plan.links:
                await fetch(tx, "write_folded_links", links=[_link_row(link, targets) for link in plan.links])
            if plan.saturate:
                await fetch(tx, "saturate_fold_targets", identities=key_params(plan.saturate), now=now)
            deleted = await fetch(tx, "delete_identities", identities=key_params(sorted(f.old for f in folds)))
            if stray:
                await fetch(tx, "delete_identities", identities=key_params(stray))
            changed = await contest(
                tx,
                profile_ids=[e.profile_id for e in edges],
                identities=sorted(targets),
                holders_of=newly_blocked,  # a value blocked now no longer counts for its holders' identities
                limits=contest_limits,
                fanout=limit,
                now=now,
            )
            # The change log: PROFILE_UPDATED for each profile whose edges moved (its identities changed form), and
            # IDENTITY_SATURATED for those the contested rule stopped; last in the transaction (record_changes).
            moved = sorted({e.profile_id for e in edges})
            changes = [Change(ChangeType.PROFILE_UPDATED, (pid,)) for pid in moved] + saturations(changed)
            await record_changes(tx, changes, audit, now)
            return FoldOutcome(plan, created, int(deleted[0]["deleted"]), turned, dropped, len(changed.contested))

        return await self._run(work, write=not dry_run)


def _lock_rows(folds: Sequence[Fold]) -> list[dict[str, Any]]:
    """The folded values and their targets, sorted by (key, value): the lock order of the write path."""
    rows: dict[IdentityKey, dict[str, Any]] = {}
    for f in folds:
        rows[f.old] = {
            "key": f.old.key,
            "value": f.old.value,
            "rule": None,
            "rule_version": None,
            "blocked": False,
            "hash": None,
        }
    for f in folds:
        t = f.target
        entry = rows.setdefault(
            t.identity,
            {
                "key": t.key,
                "value": t.value,
                "rule": str(t.rule),
                "rule_version": t.rule_version,
                "blocked": False,
                "hash": f.suppression_hash,
            },
        )
        entry["blocked"] = entry["blocked"] or f.blocked
    return [rows[k] for k in sorted(rows)]


def _states(rows: Iterable[Mapping[str, Any]]) -> dict[IdentityKey, IdentityState]:
    return {
        IdentityKey(r["key"], r["value"]): IdentityState(int(r["linking"]), bool(r["saturated"]), bool(r["blocked"]))
        for r in rows
    }


def _props(row: Mapping[str, Any]) -> EdgeProps:
    first, last = row.get("first_seen"), row.get("last_seen")
    return EdgeProps(
        raw=None if row.get("raw") is None else str(row["raw"]),
        source=None if row.get("source") is None else str(row["source"]),
        first_seen=None if first is None else records.to_datetime(first),
        last_seen=None if last is None else records.to_datetime(last),
    )


def _fold_edge(row: Mapping[str, Any]) -> FoldEdge:
    existing = row["target_edges"]
    return FoldEdge(
        profile_id=str(row["profile_id"]),
        old=IdentityKey(row["key"], row["from_value"]),
        target=IdentityKey(row["key"], row["to_value"]),
        edge=_props(row),
        target_edge=_props(existing[0]) if existing else None,
    )


def _link_row(link: FoldedLink, targets: Mapping[IdentityKey, NormalizedIdentity]) -> dict[str, Any]:
    return {
        "profile_id": link.profile_id,
        "key": link.target.key,
        "value": link.target.value,
        "raw": link.props.raw,
        "source": link.props.source,
        "rule_version": targets[link.target].rule_version,
        "first_seen": link.props.first_seen,
        "last_seen": link.props.last_seen,
        "linking": link.linking,
        "exists": link.exists,
    }
