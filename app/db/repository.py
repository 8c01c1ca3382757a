"""Neo4jRepository: the Repository port on Neo4j. Runs the cypher/ files; the only place that executes queries."""

from __future__ import annotations

import binascii
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncTransaction, Bookmarks

from app.db import records
from app.db.queries import query
from app.db.transactions import Interfered, run_read, run_transaction
from app.domain.model import (
    Component,
    ErasurePlan,
    ErasureReceipt,
    Explanation,
    ExplanationStep,
    ExportRow,
    IdentityKey,
    IdentityLink,
    MergeEdge,
    Profile,
    StoredIdentity,
)
from app.errors import Conflict, InvalidInput
from app.ports import ProfileComponent, ProfileWrite, Snapshot, SuppressedMeanwhile, WriteOutcome

T = TypeVar("T")
Rows = list[dict[str, Any]]


async def _rows(tx: AsyncTransaction, name: str, **params: Any) -> Rows:
    result = await tx.run(query(name), params)
    return [record.data() async for record in result]


def _bookmarks(consistency: str | None) -> Bookmarks | None:
    try:
        return records.bookmarks_from(consistency)
    except (ValueError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("consistencyToken is not a token this service issued") from None


def _key_params(keys: Sequence[IdentityKey]) -> list[dict[str, str]]:
    return [{"key": k.key, "value": k.value} for k in keys]


# How many times an erasure reads its customer again after locking the profiles that joined it meanwhile.
MAX_LOCK_ROUNDS = 20


async def _plan_in(tx: AsyncTransaction, profile_ids: Sequence[str]) -> ErasurePlan:
    """What erasing these profiles deletes (identities no other profile holds) and keeps, read in `tx`."""
    rows = await _rows(tx, "erasure_plan", profile_ids=list(profile_ids))
    delete = sorted(IdentityKey(r["key"], r["value"]) for r in rows if not r["held_elsewhere"])
    keep = sorted(IdentityKey(r["key"], r["value"]) for r in rows if r["held_elsewhere"])
    return ErasurePlan(tuple(sorted(profile_ids)), tuple(delete), tuple(keep))


class Neo4jRepository:
    def __init__(self, driver: AsyncDriver, *, database: str = "neo4j", timeout_s: float = 5.0) -> None:
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _read(self, work: Callable[[AsyncTransaction], Awaitable[T]], consistency: str | None = None) -> T:
        value, _ = await run_transaction(
            self._driver,
            work,
            database=self._database,
            write=False,
            bookmarks=_bookmarks(consistency),
            budget_s=self._timeout_s,
        )
        return value

    async def _write(
        self, work: Callable[[AsyncTransaction], Awaitable[T]], timeout_s: float | None = None
    ) -> tuple[T, str]:
        value, bookmarks = await run_transaction(
            self._driver, work, database=self._database, write=True, budget_s=timeout_s or self._timeout_s
        )
        return value, records.token_from(bookmarks)

    async def _one(self, name: str, consistency: str | None = None, **params: Any) -> Rows:
        """A single read statement, auto-committed: one round trip."""
        return await run_read(
            self._driver,
            query(name),
            params,
            database=self._database,
            bookmarks=_bookmarks(consistency),
            budget_s=self._timeout_s,
        )

    async def _query(self, name: str, consistency: str | None = None, **params: Any) -> Rows:
        async def work(tx: AsyncTransaction) -> Rows:
            return await _rows(tx, name, **params)

        return await self._read(work, consistency)

    # -- writes -----------------------------------------------------------------------------------------------

    async def upsert_profiles(
        self,
        rows: Sequence[ProfileWrite],
        *,
        now: datetime,
        max_profiles_per_identity: int,
        snapshot_nodes: int | None = None,
    ) -> tuple[list[WriteOutcome | None], str, Snapshot | None]:
        # Locks are taken profiles first, then identities, each in sorted order, to keep deadlocks rare (the
        # transaction is retried on the ones that still happen). One statement writes; a second, optional one reads
        # the upserted profiles' customers back inside the same transaction.
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
            suppressed = frozenset(i["hash"] for i in stored_identities if i["suppressed"])
            if suppressed:
                raise SuppressedMeanwhile(suppressed)
            outcomes: list[WriteOutcome | None] = [None] * len(rows)
            for p in profiles:
                outcomes[p["index"]] = WriteOutcome(p["profile_id"], bool(p["created"]))
            snapshot = None
            if snapshot_nodes is not None:
                stored = sorted({o.profile_id for o in outcomes if o is not None})
                snapshot = snapshot_from(
                    (await _rows(tx, "profiles_snapshot", profile_ids=stored, max_nodes=snapshot_nodes))[0],
                    snapshot_nodes,
                )
            return outcomes, snapshot

        (outcomes, snapshot), token = await self._write(work, timeout_s=max(self._timeout_s, 60.0))
        return outcomes, token, snapshot

    async def merge_profiles(
        self, source_id: str, target_id: str, *, now: datetime, by: str, reason: str
    ) -> str | None:
        async def work(tx: AsyncTransaction) -> bool:
            await _rows(tx, "lock_profiles", profile_ids=sorted({source_id, target_id}))
            merged = await _rows(
                tx, "merge_profiles", source_id=source_id, target_id=target_id, now=now, by=by, reason=reason
            )
            return bool(merged)

        merged, token = await self._write(work)
        return token if merged else None

    async def unmerge_profiles(self, source_id: str, target_id: str) -> tuple[bool, str]:
        async def work(tx: AsyncTransaction) -> bool:
            rows = await _rows(tx, "unmerge_profiles", source_id=source_id, target_id=target_id)
            return bool(rows and rows[0]["removed"])

        return await self._write(work)

    async def unlink_identity(self, profile_id: str, key: IdentityKey) -> tuple[bool, str]:
        async def work(tx: AsyncTransaction) -> bool:
            rows = await _rows(tx, "unlink_identity", profile_id=profile_id, key=key.key, value=key.value)
            return bool(rows and rows[0]["removed"])

        return await self._write(work)

    # -- reads ------------------------------------------------------------------------------------------------

    async def read_identities(
        self, keys: Sequence[IdentityKey], *, max_nodes: int, candidates: int = 5, consistency: str | None = None
    ) -> Snapshot:
        row = (
            await self._one(
                "resolve_snapshot",
                consistency,
                identities=_key_params(keys),
                max_nodes=max_nodes,
                candidates=candidates,
            )
        )[0]
        stored: dict[IdentityKey, StoredIdentity] = {}
        components: dict[str | IdentityKey, ProfileComponent] = {}
        for seed in row["seeds"]:
            identity = records.identity_from(seed)
            stored[identity.identity] = identity
            if seed["profile_ids"]:
                component = ProfileComponent(tuple(seed["profile_ids"]), seed["node_count"] > max_nodes)
                components[seed["holder"] if seed["holder"] is not None else identity.identity] = component
        return Snapshot(tuple(stored.values()), components, component_from(row["profiles"], truncated=False))

    async def read_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> Snapshot:
        rows = await self._one("profiles_snapshot", consistency, profile_ids=list(profile_ids), max_nodes=max_nodes)
        return snapshot_from(rows[0], max_nodes)

    async def components_of_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> dict[str, ProfileComponent]:
        rows = await self._query(
            "component_from_profiles", consistency, profile_ids=list(profile_ids), max_nodes=max_nodes
        )
        return {r["seed_id"]: ProfileComponent(tuple(r["profile_ids"]), r["node_count"] > max_nodes) for r in rows}

    async def explain(self, profile_a: str, profile_b: str) -> Explanation | None:
        rows = await self._query("explain_link", a=profile_a, b=profile_b)
        if not rows:
            return None
        return explanation_from(profile_a, profile_b, rows[0])

    # -- erasure ----------------------------------------------------------------------------------------------

    async def erasure_plan(self, profile_ids: Sequence[str]) -> ErasurePlan:
        async def work(tx: AsyncTransaction) -> ErasurePlan:
            return await _plan_in(tx, profile_ids)

        return await self._read(work)

    async def erase(
        self,
        profile_id: str,
        *,
        whole_customer: bool,
        max_nodes: int,
        suppression_hashes: Callable[[Sequence[IdentityKey]], Sequence[str]],
        request_id: str,
        requested_by: str,
        reason: str,
        now: datetime,
    ) -> ErasureReceipt | None:
        # The plan is made inside the erasing transaction, under locks: the profiles of the customer, then every
        # identity they hold, are write-locked, and the customer is read again until no new profile joined it
        # meanwhile. Once they are locked, nobody can link a profile to them before this transaction ends, so what
        # it deletes is the whole customer as of its commit, and the identities it deletes have no other holder.
        async def work(tx: AsyncTransaction) -> ErasureReceipt | None:
            found = await _rows(tx, "find_erasure_receipt", request_id=request_id)
            if found:
                return records.receipt_from(found[0]["receipt"])
            locked: set[str] = set()
            wanted = {profile_id}
            for _ in range(MAX_LOCK_ROUNDS):
                if whole_customer:
                    component = await self._component_in(tx, profile_id, max_nodes)
                    if component is None:
                        wanted = set()
                    elif component.truncated:
                        raise Conflict(f"the customer has more than {max_nodes} nodes; erase its profiles one by one")
                    else:
                        wanted = set(component.profile_ids)
                if profile_id not in wanted or wanted <= locked:
                    break
                new = sorted(wanted - locked)
                present = {r["profile_id"] for r in await _rows(tx, "lock_profiles", profile_ids=new)}
                await _rows(tx, "lock_held_identities", profile_ids=sorted(present))
                locked |= present
                if profile_id not in present or not whole_customer:
                    wanted &= locked
                    break
            else:
                raise Interfered()
            if profile_id not in locked or profile_id not in wanted:
                # Gone: erased by a transaction this one waited for (maybe an earlier try of this same request).
                again = await _rows(tx, "find_erasure_receipt", request_id=request_id)
                return records.receipt_from(again[0]["receipt"]) if again else None
            plan = await _plan_in(tx, sorted(wanted))
            hashes = sorted(set(suppression_hashes(plan.identities)))
            counts = (
                await _rows(
                    tx, "erase_profiles", profile_ids=list(plan.profile_ids), identities=_key_params(plan.identities)
                )
            )[0]
            await _rows(tx, "add_suppressions", hashes=hashes, now=now, request_id=request_id)
            receipt = await _rows(
                tx,
                "record_erasure",
                request_id=request_id,
                requested_by=requested_by,
                reason=reason,
                now=now,
                profiles_deleted=counts["profiles_deleted"],
                identities_deleted=counts["identities_deleted"],
                suppressed=len(hashes),
            )
            return records.receipt_from(receipt[0]["receipt"])

        receipt, _ = await self._write(work, timeout_s=max(self._timeout_s, 60.0))
        return receipt

    async def _component_in(self, tx: AsyncTransaction, profile_id: str, max_nodes: int) -> ProfileComponent | None:
        """The customer of one profile, read inside the given transaction (None: no such profile)."""
        rows = await _rows(tx, "component_from_profiles", profile_ids=[profile_id], max_nodes=max_nodes)
        if not rows:
            return None
        return ProfileComponent(tuple(rows[0]["profile_ids"]), rows[0]["node_count"] > max_nodes)

    async def erasure_receipt(self, request_id: str) -> ErasureReceipt | None:
        rows = await self._query("find_erasure_receipt", request_id=request_id)
        return records.receipt_from(rows[0]["receipt"]) if rows else None

    # -- export -----------------------------------------------------------------------------------------------

    async def export_rows(self, *, page_size: int = 1000, max_nodes: int = 2000) -> AsyncIterator[ExportRow]:
        after = ""
        while True:
            rows = await self._query("export_page", after=after, limit=page_size, max_nodes=max_nodes)
            for r in rows:
                yield ExportRow(r["profile_id"], r["source"] or "", r["source_id"], r["customer_id"])
            if len(rows) < page_size:
                return
            after = rows[-1]["profile_id"]


def _profile_key(row: ProfileWrite) -> tuple[str, ...]:
    """Rows of a batch with equal keys write one profile."""
    if row.mode == "source":
        return ("source", row.source, row.source_id or "")
    if row.mode == "id":
        return ("id", row.profile_id or "")
    return ("new", row.new_id)


def snapshot_from(row: Mapping[str, Any], max_nodes: int) -> Snapshot:
    """A profiles_snapshot row: components keyed by seed profile id, and the details of every profile."""
    components: dict[str | IdentityKey, ProfileComponent] = {
        seed["seed_id"]: ProfileComponent(tuple(seed["profile_ids"]), seed["node_count"] > max_nodes)
        for seed in row["seeds"]
    }
    return Snapshot((), components, component_from(row["profiles"], truncated=False))


def component_from(rows: Rows, truncated: bool) -> Component:
    profiles: list[Profile] = []
    identities: dict[IdentityKey, StoredIdentity] = {}
    links: list[IdentityLink] = []
    merges: list[MergeEdge] = []
    for row in rows:
        props = records.properties(row["profile"])
        pid = str(props["id"])
        held = []
        for link_row in row["links"]:
            stored = records.identity_from(link_row)
            identities[stored.identity] = stored
            links.append(records.link_from(pid, link_row))
            held.append(stored.identity)
        profiles.append(records.profile_from(props, held))
        merges.extend(records.merge_from(pid, m) for m in row["merges"])
    return Component(tuple(profiles), tuple(identities.values()), tuple(links), tuple(merges), truncated)


def explanation_from(profile_a: str, profile_b: str, row: Mapping[str, Any]) -> Explanation:
    nodes: list[dict[str, Any]] = row["nodes"]
    rels: list[dict[str, Any]] = row["rels"]
    element_ids: list[str] = row["element_ids"]
    if not rels:
        return Explanation((profile_a, profile_b), profile_a == profile_b, ())
    by_element = dict(zip(element_ids, nodes, strict=True))
    steps: list[ExplanationStep] = []
    # The path alternates profile -[HAS_IDENTITY]- identity -[HAS_IDENTITY]- profile,
    # or profile -[MERGED_INTO]- profile.
    n = 0
    while n < len(rels):
        here = nodes[n]
        rel = rels[n]
        if rel["type"] == "MERGED_INTO":
            there = nodes[n + 1]
            source_id = by_element[rel["from"]]["id"]
            steps.append(
                ExplanationStep(
                    here["id"],
                    there["id"],
                    "MERGE",
                    merge=records.merge_from(source_id, {**rel, "target": by_element[rel["to"]]["id"]}),
                )
            )
            n += 1
            continue
        identity = nodes[n + 1]
        there = nodes[n + 2]
        key = IdentityKey(identity["key"], identity["value"])
        steps.append(
            ExplanationStep(
                here["id"],
                there["id"],
                "IDENTITY",
                identity=key,
                from_link=records.link_from(here["id"], {**rel, "key": key.key, "value": key.value, "linking": True}),
                to_link=records.link_from(
                    there["id"], {**rels[n + 1], "key": key.key, "value": key.value, "linking": True}
                ),
            )
        )
        n += 2
    return Explanation((profile_a, profile_b), True, tuple(steps))
