"""Neo4jRepository: the Repository port on Neo4j. Runs the cypher/ files; the only place that executes queries."""

from __future__ import annotations

import binascii
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncTransaction, Bookmarks

from app.db import records
from app.db.keystore import checked_work
from app.db.queries import query
from app.db.transactions import Interfered, run_read, run_transaction
from app.domain.model import (
    Component,
    ErasedRecord,
    ErasureHashes,
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
from app.erasure_key import ErasureKey
from app.errors import Conflict, InvalidInput
from app.ports import ProfileComponent, ProfileWrite, Snapshot, SuppressedMeanwhile, TooManyIdentities, WriteOutcome

T = TypeVar("T")
Rows = list[dict[str, Any]]


async def _rows(tx: AsyncTransaction, name: str, **params: Any) -> Rows:
    result = await tx.run(query(name), params)
    return [record.data() async for record in result]


def _bookmarks(consistency: str | None, token_key: bytes) -> Bookmarks | None:
    try:
        return records.bookmarks_from(consistency, token_key)
    except (ValueError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("consistencyToken is not a token this service issued") from None


def _key_params(keys: Sequence[IdentityKey]) -> list[dict[str, str]]:
    return [{"key": k.key, "value": k.value} for k in keys]


# The links of one profile a read returns, unless the repository is given the strategy's limit.
MAX_LINKS_PER_PROFILE = 500

# How many times an erasure reads its customer again after locking the profiles that joined it meanwhile.
MAX_LOCK_ROUNDS = 20


async def _plan_in(tx: AsyncTransaction, profile_ids: Sequence[str]) -> ErasurePlan:
    """What erasing these profiles deletes (identities no other profile holds, source records) and keeps, read in
    `tx`."""
    rows = await _rows(tx, "erasure_plan", profile_ids=list(profile_ids))
    delete = sorted(IdentityKey(r["key"], r["value"]) for r in rows if not r["held_elsewhere"])
    keep = sorted(IdentityKey(r["key"], r["value"]) for r in rows if r["held_elsewhere"])
    erased = [
        ErasedRecord(str(r["profile_id"]), str(r["source"] or ""), r["source_id"])
        for r in await _rows(tx, "erased_records", profile_ids=list(profile_ids))
    ]
    return ErasurePlan(tuple(sorted(profile_ids)), tuple(delete), tuple(keep), tuple(erased))


def _repeated(props: Mapping[str, Any], request_id: str, profile_id: str) -> ErasureReceipt:
    """The receipt of a request id already used: the same one for the same subject (the profile it named or one it
    deleted); another subject is a CONFLICT, and nothing is erased. A receipt recorded before receipts kept their
    subject is taken as a repeat."""
    subject, erased = props.get("subject"), props.get("profile_ids")
    if subject is not None and profile_id != subject and profile_id not in (erased or ()):
        raise Conflict(f"request id {request_id} was already used for another erasure; nothing was erased")
    return records.receipt_from(props)


class Neo4jRepository:
    def __init__(
        self,
        driver: AsyncDriver,
        *,
        token_key: bytes,
        database: str = "neo4j",
        timeout_s: float = 5.0,
        erasure_key: ErasureKey | None = None,
        max_links_per_profile: int = MAX_LINKS_PER_PROFILE,
    ) -> None:
        """`token_key` signs the consistency tokens this repository issues and checks those it is given
        (records.token_key(erasure_key): every replica sharing the erasure key honours the others' tokens). A read
        returns at most `max_links_per_profile` links of one profile (the strategy's max_identities_per_profile) and
        marks the customer truncated when a profile holds more.
        With `erasure_key`, every write transaction first checks it against the database's (ErasureKeyMismatch)."""
        self._driver = driver
        self._max_links = max_links_per_profile
        self._token_key = token_key
        self._database = database
        self._timeout_s = timeout_s
        self._erasure_key = erasure_key

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _read(self, work: Callable[[AsyncTransaction], Awaitable[T]], consistency: str | None = None) -> T:
        value, _ = await run_transaction(
            self._driver,
            work,
            database=self._database,
            write=False,
            bookmarks=_bookmarks(consistency, self._token_key),
            budget_s=self._timeout_s,
        )
        return value

    async def _write(
        self, work: Callable[[AsyncTransaction], Awaitable[T]], timeout_s: float | None = None
    ) -> tuple[T, str]:
        value, bookmarks = await run_transaction(
            self._driver,
            checked_work(work, self._erasure_key),
            database=self._database,
            write=True,
            budget_s=timeout_s or self._timeout_s,
        )
        return value, records.token_from(bookmarks, self._token_key)

    async def _one(self, name: str, consistency: str | None = None, *, leader: bool = False, **params: Any) -> Rows:
        """A single read statement, auto-committed: one round trip."""
        return await run_read(
            self._driver,
            query(name),
            params,
            database=self._database,
            bookmarks=_bookmarks(consistency, self._token_key),
            budget_s=self._timeout_s,
            leader=leader,
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
        max_identities_per_profile: int = 0,
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
            named = sorted({r.record_hash for r in rows if r.record_hash is not None})
            erased = await _rows(tx, "suppressed_hashes", hashes=named) if named else []
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
            snapshot = None
            if snapshot_nodes is not None:
                stored = sorted({o.profile_id for o in outcomes if o is not None})
                snapshot = snapshot_from(
                    (
                        await _rows(
                            tx,
                            "profiles_snapshot",
                            profile_ids=stored,
                            max_nodes=snapshot_nodes,
                            max_links=self._max_links,
                        )
                    )[0],
                    snapshot_nodes,
                )
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
    ) -> str | None:
        # Both customers are locked whole (profiles and the identities they hold), then read and checked in this
        # transaction: no concurrent write can add a value to either between the check and the merge.
        async def work(tx: AsyncTransaction) -> bool:
            too_large = f"the customers have more than {max_nodes} nodes; merge is refused"
            locked = await self._lock_customers(tx, [source_id, target_id], max_nodes, too_large=too_large)
            if not {source_id, target_id} <= locked:
                return False
            row = (
                await _rows(
                    tx,
                    "profiles_snapshot",
                    profile_ids=[source_id, target_id],
                    max_nodes=max_nodes,
                    max_links=self._max_links,
                )
            )[0]
            check(snapshot_from(row, max_nodes))
            merged = await _rows(
                tx, "merge_profiles", source_id=source_id, target_id=target_id, now=now, by=by, reason=reason
            )
            return bool(merged)

        merged, token = await self._write(work)
        return token if merged else None

    async def suppress_absent(
        self,
        identities: Sequence[IdentityKey],
        hashes: Sequence[str],
        *,
        request_id: str,
        requested_by: str,
        reason: str,
        now: datetime,
    ) -> ErasureReceipt | None:
        """Put the keyed hashes of values nobody holds on the suppression list, with a receipt (nothing deleted), in
        one transaction; None, writing nothing, when one of the values is held by a profile after all. Each value's
        identity node is merged first (a placeholder, deleted again before commit): a writer creating it meanwhile
        commits first (and the value is found held) or waits for this transaction (and then finds it suppressed)."""

        async def work(tx: AsyncTransaction) -> ErasureReceipt | None:
            found = await _rows(tx, "claim_absent_identities", identities=_key_params(sorted(set(identities))))
            if any(r["held"] for r in found):
                return None
            await _rows(tx, "delete_identities", identities=_key_params(sorted(set(identities))))
            await _rows(tx, "add_suppressions", hashes=sorted(set(hashes)), now=now, request_id=request_id)
            receipt = await _rows(
                tx,
                "record_erasure",
                request_id=request_id,
                requested_by=requested_by,
                reason=reason,
                now=now,
                subject=None,
                profile_ids=[],
                profiles_deleted=0,
                identities_deleted=0,
                suppressed=len(set(hashes)),
                records_suppressed=0,
            )
            if not receipt[0]["created"]:
                raise Interfered()
            return records.receipt_from(receipt[0]["receipt"])

        receipt, _ = await self._write(work)
        return receipt

    async def suppressed_among(self, hashes: Sequence[str]) -> set[str]:
        rows = await self._query("suppressed_hashes", hashes=list(hashes))
        return {str(r["hash"]) for r in rows}

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
        self,
        keys: Sequence[IdentityKey],
        *,
        max_nodes: int,
        candidates: int = 5,
        consistency: str | None = None,
        leader: bool = False,
    ) -> Snapshot:
        row = (
            await self._one(
                "resolve_snapshot",
                consistency,
                leader=leader,
                identities=_key_params(keys),
                max_nodes=max_nodes,
                candidates=candidates,
                max_links=self._max_links,
            )
        )[0]
        stored: dict[IdentityKey, StoredIdentity] = {}
        components: dict[str | IdentityKey, ProfileComponent] = {}
        capped = _links_capped(row["profiles"])
        for seed in row["seeds"]:
            identity = records.identity_from(seed)
            stored[identity.identity] = identity
            if seed["profile_ids"]:
                truncated = seed["node_count"] > max_nodes or not capped.isdisjoint(seed["profile_ids"])
                component = ProfileComponent(tuple(seed["profile_ids"]), truncated)
                components[seed["holder"] if seed["holder"] is not None else identity.identity] = component
        return Snapshot(tuple(stored.values()), components, component_from(row["profiles"], truncated=False))

    async def read_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> Snapshot:
        rows = await self._one(
            "profiles_snapshot",
            consistency,
            profile_ids=list(profile_ids),
            max_nodes=max_nodes,
            max_links=self._max_links,
        )
        return snapshot_from(rows[0], max_nodes)

    async def components_of_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> dict[str, ProfileComponent]:
        rows = await self._query(
            "component_from_profiles", consistency, profile_ids=list(profile_ids), max_nodes=max_nodes
        )
        return {r["seed_id"]: ProfileComponent(tuple(r["profile_ids"]), r["node_count"] > max_nodes) for r in rows}

    async def explain(self, profile_a: str, profile_b: str, *, max_nodes: int) -> Explanation | None:
        rows = await self._one("explain_link", a=profile_a, b=profile_b, max_nodes=max_nodes)
        if not rows:
            return None
        if rows[0]["too_large"]:
            raise Conflict(f"the customer has more than {max_nodes} nodes: too large to explain")
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
        suppression_hashes: Callable[[ErasurePlan], ErasureHashes],
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
                return _repeated(found[0]["receipt"], request_id, profile_id)
            if whole_customer:
                locked = await self._lock_customers(tx, [profile_id], max_nodes)
            else:
                locked = {r["profile_id"] for r in await _rows(tx, "lock_profiles", profile_ids=[profile_id])}
                await _rows(tx, "lock_held_identities", profile_ids=sorted(locked))
            if profile_id not in locked:
                # Gone: erased by a transaction this one waited for (maybe an earlier try of this same request).
                again = await _rows(tx, "find_erasure_receipt", request_id=request_id)
                return _repeated(again[0]["receipt"], request_id, profile_id) if again else None
            plan = await _plan_in(tx, sorted(locked))
            hashes = suppression_hashes(plan)
            counts = (
                await _rows(
                    tx, "erase_profiles", profile_ids=list(plan.profile_ids), identities=_key_params(plan.identities)
                )
            )[0]
            suppressed = sorted(set(hashes.values) | set(hashes.records))
            await _rows(tx, "add_suppressions", hashes=suppressed, now=now, request_id=request_id)
            receipt = await _rows(
                tx,
                "record_erasure",
                request_id=request_id,
                requested_by=requested_by,
                reason=reason,
                now=now,
                subject=profile_id,
                profile_ids=list(plan.profile_ids),
                profiles_deleted=counts["profiles_deleted"],
                identities_deleted=counts["identities_deleted"],
                suppressed=len(set(hashes.values)),
                records_suppressed=len(set(hashes.records)),
            )
            if not receipt[0]["created"]:  # the request id was taken by an erasure that committed meanwhile
                raise Interfered()
            return records.receipt_from(receipt[0]["receipt"])

        receipt, _ = await self._write(work, timeout_s=max(self._timeout_s, 60.0))
        return receipt

    async def _lock_customers(
        self,
        tx: AsyncTransaction,
        seeds: Sequence[str],
        max_nodes: int,
        *,
        too_large: str = "the customer has more than {max_nodes} nodes; erase its profiles one by one",
    ) -> set[str]:
        """Write-lock every profile of the seeds' customers and every identity they hold, reading the customers again
        after each round of locks until a read finds no profile that is not locked yet: from then on nobody can link
        a profile to them before `tx` ends. Returns the profiles of that last read (a seed missing from them does not
        exist): a profile locked in an earlier round that has left the customers since (an unlink or unmerge that
        committed meanwhile) stays locked but is not theirs."""
        locked: set[str] = set()
        for _ in range(MAX_LOCK_ROUNDS):
            wanted: set[str] = set()
            for seed in seeds:
                component = await self._component_in(tx, seed, max_nodes)
                if component is not None and component.truncated:
                    raise Conflict(too_large.format(max_nodes=max_nodes))
                if component is not None:
                    wanted |= set(component.profile_ids)
            if wanted <= locked:
                return wanted
            present = {r["profile_id"] for r in await _rows(tx, "lock_profiles", profile_ids=sorted(wanted - locked))}
            await _rows(tx, "lock_held_identities", profile_ids=sorted(present))
            locked |= present
        raise Interfered()

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


async def _refuse_too_many_identities(
    tx: AsyncTransaction, outcomes: Sequence[WriteOutcome | None], limit: int
) -> None:
    """Raises TooManyIdentities (the transaction is rolled back) when a profile the write stored now holds more than
    `limit` identities: counted in the writing transaction, under the profiles' locks, so the limit holds across
    calls and concurrent writers."""
    stored = sorted({o.profile_id for o in outcomes if o is not None})
    over = {
        r["profile_id"]: r["identities"]
        for r in await _rows(tx, "profiles_over_identity_limit", profile_ids=stored, limit=limit)
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


def _profile_key(row: ProfileWrite) -> tuple[str, ...]:
    """Rows of a batch with equal keys write one profile."""
    if row.mode == "source":
        return ("source", row.source, row.source_id or "")
    if row.mode == "id":
        return ("id", row.profile_id or "")
    return ("new", row.new_id)


def snapshot_from(row: Mapping[str, Any], max_nodes: int) -> Snapshot:
    """A profiles_snapshot row: components keyed by seed profile id, and the details of every profile. A component is
    truncated when it has more than max_nodes nodes or a profile of it more links than the read returns."""
    capped = _links_capped(row["profiles"])
    components: dict[str | IdentityKey, ProfileComponent] = {
        seed["seed_id"]: ProfileComponent(
            tuple(seed["profile_ids"]),
            seed["node_count"] > max_nodes or not capped.isdisjoint(seed["profile_ids"]),
        )
        for seed in row["seeds"]
    }
    return Snapshot((), components, component_from(row["profiles"], truncated=False))


def _links_capped(rows: Rows) -> set[str]:
    """The ids of the profiles of a snapshot holding more links than it returned (cypher/profiles_snapshot.cypher)."""
    return {str(records.properties(r["profile"])["id"]) for r in rows if r.get("more_links")}


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
