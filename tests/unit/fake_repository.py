"""An in-memory Repository (app/services/ports.py) for unit tests of the use cases: no Neo4j, no I/O.

The graph of the Cypher files as dicts: profiles, identities, one edge per (profile, identity) (an IdentityLink:
`linking` is HAS_IDENTITY, else OBSERVED), merge edges, the suppression list, erasure receipts. Where the use cases
depend on it, it does what app/db does: a customer is the walk over linking and merge edges from a seed, truncated
beyond max_nodes nodes (profiles and identities); a saturated identity gives the customers of up to `candidates` of
its OBSERVED holders, a blocked one none; an upsert applies write_profiles.cypher's fan-out rule, then raises
SuppressedMeanwhile (an identity's or record's hash is suppressed) or TooManyIdentities, writing nothing (writes work
on a copy of the graph); an erasure plans, deletes, suppresses and keeps a receipt with its subject. Given
`contest_limits`, upserts, unlinks and erasures apply the contested rule (app/domain/fanout.py) to every identity
(contest_identities.cypher re-evaluates only those the change touched: the same outcome); a contested identity
gives candidates as a saturated one does.

Simpler on purpose, where no use case depends on it: each call is one atomic step (no locks, retries, Interfered);
tokens are opaque "fake-<n>" strings (one not issued here is InvalidInput) and `leader` is ignored; no cap on the
links read per profile; walks go in sorted order and a saturated identity's holders in profile id order (Neo4j's is
unspecified); explain gives one shortest chain; no key fingerprint, placeholders, version counter or edge rule_version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from app.domain.changes import Audit, ChangeType
from app.domain.model import (
    ErasedRecord,
    ErasureHashes,
    ErasurePlan,
    ErasureReceipt,
    IdentityKey,
    IdentityLink,
    MergeEdge,
    Profile,
    Scalar,
    StoredIdentity,
)
from app.errors import Conflict
from app.services.ports import (
    ProfileWrite,
    Snapshot,
    SuppressedMeanwhile,
    TooManyIdentities,
    WriteOutcome,
)
from tests.unit.fake_changes import Draft, upsert_drafts
from tests.unit.fake_contest import apply_contest
from tests.unit.fake_graph import FakeGraphReads, Graph, Holders


class InMemoryRepository(FakeGraphReads):
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
        g = copy.deepcopy(self.graph)  # a transaction: it becomes the graph only if nothing below raises
        outcomes: list[WriteOutcome | None] = [None] * len(rows)
        # per identity: profile id -> (normalized value, source) of the first row naming it; its hash; blocked
        holders: dict[IdentityKey, Holders] = {}
        hashes: dict[IdentityKey, str] = {}
        blocked: dict[IdentityKey, bool] = {}
        order = sorted(
            range(len(rows)),
            key=lambda n: (rows[n].mode, rows[n].source, rows[n].source_id or "", rows[n].profile_id or "", n),
        )
        for n in order:
            row = rows[n]
            profile = _profile_of(g, row, now)
            if profile is None:
                continue
            outcomes[n] = WriteOutcome(profile.id, profile.id == row.new_id)
            g.profiles[profile.id] = _with_attributes(profile, row.attributes, now)
            for ident, hashed in zip(row.identities, row.suppression_hashes, strict=True):
                holders.setdefault(ident.identity, {}).setdefault(profile.id, (ident, row.source))
                hashes.setdefault(ident.identity, hashed)
                blocked[ident.identity] = blocked.get(ident.identity, False) or ident.identity in row.blocked
        named = {r.record_hash for r in rows if r.record_hash is not None}
        suppressed = {h for h in [*hashes.values(), *named] if h in g.suppressions}
        if suppressed:
            raise SuppressedMeanwhile(frozenset(suppressed))
        for key in sorted(holders):
            _write_edges(g, key, holders[key], blocked[key], max_profiles_per_identity, now)
        stored = sorted({o.profile_id for o in outcomes if o is not None})
        counts = {pid: sum(1 for p, _ in g.edges if p == pid) for pid in stored}
        refused = {
            n: f"profile {o.profile_id} would hold {counts[o.profile_id]} identities, over the limit per profile"
            for n, o in enumerate(outcomes)
            if o is not None and counts[o.profile_id] > max_identities_per_profile > 0
        }
        if refused:
            raise TooManyIdentities(refused)
        apply_contest(g, contest_limits, max_profiles_per_identity)
        snapshot = None if snapshot_nodes is None else self._profiles_snapshot(g, stored, snapshot_nodes)
        old = self.graph
        customers = {} if snapshot_nodes is None else {p: self._oldest(g, p, snapshot_nodes) for p in stored}
        drafts = upsert_drafts(
            rows,
            outcomes,
            {pid: p.attributes for pid, p in old.profiles.items()},
            {pid: p.attributes for pid, p in g.profiles.items()},
            old.edges,
            g.edges,
            _stopped(old, g),
            {p: c for p, c in customers.items() if c is not None},
        )
        self.graph = g
        self.record(drafts, audit, now)
        return outcomes, self._token(), snapshot

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
        g = self.graph
        for seed in (source_id, target_id):
            if seed in g.profiles and self._component(g, seed, max_nodes).truncated:
                raise Conflict(f"the customers have more than {max_nodes} nodes; merge is refused")
        if source_id not in g.profiles or target_id not in g.profiles:
            return None
        check(self._profiles_snapshot(g, [source_id, target_id], max_nodes))
        if (source_id, target_id) not in g.merges:
            before = self._oldest(g, source_id, max_nodes)
            g.merges[(source_id, target_id)] = MergeEdge(source_id, target_id, now, by, reason)
            after = self._oldest(g, target_id, max_nodes)
            self.record([Draft(ChangeType.MERGE, (source_id, target_id), before, after)], audit, now)
        return self._token()

    async def unmerge_profiles(self, source_id: str, target_id: str, *, audit: Audit) -> tuple[bool, str]:
        removed = self.graph.merges.pop((source_id, target_id), None) is not None
        if removed:
            self.record([Draft(ChangeType.UNMERGE, (source_id, target_id))], audit, None)
        return removed, self._token()

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
        g = self.graph
        old = copy.deepcopy(g)
        removed = g.edges.pop((profile_id, key), None) is not None
        if key in g.identities and not any(k == key for _, k in g.edges):
            del g.identities[key]
        apply_contest(g, contest_limits, max_profiles_per_identity)
        if removed:
            drafts = [Draft(ChangeType.IDENTITY_UNLINKED, (profile_id,)), *_contest_changes(old, g)]
            self.record(drafts, audit, now)
        return removed, self._token()

    async def count_contested(self) -> int:
        return sum(1 for i in self.graph.identities.values() if i.contested)

    async def erasure_plan(self, profile_ids: Sequence[str]) -> ErasurePlan:
        return _plan(self.graph, profile_ids)

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
        contest_limits: Mapping[str, int] | None = None,
        max_profiles_per_identity: int = 0,
        change: ChangeType | None = None,
    ) -> ErasureReceipt | None:
        g = copy.deepcopy(self.graph)  # a transaction: it becomes the graph only if nothing below raises
        if request_id in g.receipts:
            receipt, subject, erased = g.receipts[request_id]
            if subject is not None and profile_id != subject and profile_id not in erased:
                raise Conflict(f"request id {request_id} was already used for another erasure; nothing was erased")
            return receipt
        if profile_id not in g.profiles:
            return None
        part = self._component(g, profile_id, max_nodes) if whole_customer else None
        if part is not None and part.truncated:
            raise Conflict(f"the customer has more than {max_nodes} nodes; erase its profiles one by one")
        plan = _plan(g, sorted(part.profile_ids) if part is not None else [profile_id])
        before = self._oldest(g, profile_id, max_nodes)
        hashes = suppression_hashes(plan)
        g.profiles = {pid: p for pid, p in g.profiles.items() if pid not in plan.profile_ids}
        g.edges = {(p, k): e for (p, k), e in g.edges.items() if p not in plan.profile_ids}
        g.merges = {(s, t): m for (s, t), m in g.merges.items() if not {s, t} & set(plan.profile_ids)}
        held = {k for _, k in g.edges}
        gone = [k for k in plan.identities if k in g.identities and k not in held]
        g.identities = {k: i for k, i in g.identities.items() if k not in gone}
        g.suppressions = {**dict.fromkeys([*hashes.values, *hashes.records], request_id), **g.suppressions}
        counts = (len(plan.profile_ids), len(gone), len(set(hashes.values)), len(set(hashes.records)))
        receipt = ErasureReceipt(request_id, "COMPLETED", requested_by, reason, now, *counts)
        g.receipts[request_id] = (receipt, profile_id, plan.profile_ids)
        apply_contest(g, contest_limits, max_profiles_per_identity)
        kind = change or (ChangeType.CUSTOMER_ERASED if whole_customer else ChangeType.PROFILE_ERASED)
        drafts = [Draft(kind, plan.profile_ids, customer_before=before), *_contest_changes(self.graph, g)]
        self.graph = g
        self.record(drafts, Audit(requested_by, request_id, reason), now)
        return receipt

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
        g = self.graph
        if any(k in identities for _, k in g.edges):
            return None
        if request_id in g.receipts:  # the real one retries until its time budget runs out, then says CONFLICT
            raise Conflict("concurrent writes to the same records kept interfering; retry")
        g.identities = {k: i for k, i in g.identities.items() if k not in identities}
        g.suppressions = {**dict.fromkeys(hashes, request_id), **g.suppressions}
        receipt = ErasureReceipt(request_id, "COMPLETED", requested_by, reason, now, 0, 0, len(set(hashes)), 0)
        g.receipts[request_id] = (receipt, None, ())
        self.record([Draft(ChangeType.CUSTOMER_ERASED, ())], Audit(requested_by, request_id, reason), now)
        return receipt

    async def erasure_receipt(self, request_id: str) -> ErasureReceipt | None:
        return self.graph.receipts[request_id][0] if request_id in self.graph.receipts else None


def _profile_of(g: Graph, row: ProfileWrite, now: datetime) -> Profile | None:
    """The profile a row writes: by (source, source_id), a new one, or by id (None when that id does not exist)."""
    if row.mode == "id":
        return g.profiles.get(row.profile_id or "")
    named = [
        p
        for p in g.profiles.values()
        if row.mode == "source" and (p.source, p.source_id) == (row.source, row.source_id)
    ]
    return named[0] if named else g.profiles.get(row.new_id) or Profile(row.new_id, row.source, row.source_id, now, now)


def _with_attributes(profile: Profile, attributes: Mapping[str, Scalar], now: datetime) -> Profile:
    """Set the given attributes (a null removes a value and its time), each timed now."""
    values = {n: v for n, v in {**profile.attributes, **attributes}.items() if v is not None}
    times = {n: t for n, t in {**profile.attribute_times, **dict.fromkeys(attributes, now)}.items() if n in values}
    return replace(profile, attributes=values, attribute_times=times, updated_at=now)


def _write_edges(g: Graph, key: IdentityKey, holders: Holders, blocked: bool, limit: int, now: datetime) -> None:
    """The fan-out rule of write_profiles.cypher for one identity and the profiles this write gives it."""
    first = next(iter(holders.values()))[0]
    ident = g.identities.get(key) or StoredIdentity(
        key.key, key.value, str(first.rule), first.rule_version, False, False, 0
    )
    ident = replace(ident, blocked=ident.blocked or blocked)
    fresh = [pid for pid in holders if (pid, key) not in g.edges]
    linking = [edge for edge, e in g.edges.items() if edge[1] == key and e.linking]
    if limit > 0 and ident.linking and len(linking) + len(fresh) > limit:
        ident = replace(ident, saturated=True)
        for edge in linking:
            g.edges[edge] = replace(g.edges[edge], linking=False)
    g.identities[key] = ident
    for pid, (value, source) in holders.items():
        held = g.edges.get((pid, key))
        if held is not None:
            g.edges[(pid, key)] = replace(held, raw=value.raw, source=source, last_seen=now)
        else:
            g.edges[(pid, key)] = IdentityLink(pid, key.key, key.value, value.raw, source, now, now, ident.linking)


def _stopped(old: Graph, new: Graph) -> dict[IdentityKey, list[str]]:
    """The identities a write stopped from linking (saturated or contested now; not blocked), with their holders."""
    stopped: dict[IdentityKey, list[str]] = {}
    for key, ident in new.identities.items():
        was = old.identities.get(key)
        if not ident.linking and not ident.blocked and (was is None or was.linking):
            stopped[key] = sorted(p for p, k in new.edges if k == key)
    return stopped


def _saturated(stopped: Mapping[IdentityKey, Sequence[str]]) -> list[Draft]:
    return [Draft(ChangeType.IDENTITY_SATURATED, tuple(h)) for _, h in sorted(stopped.items()) if h]


def _contest_changes(old: Graph, new: Graph) -> list[Draft]:
    """As app/db/changes.py `saturations`: IDENTITY_SATURATED for identities that stopped linking, IDENTITY_RELEASED
    for contested ones that link again."""
    released = [
        Draft(ChangeType.IDENTITY_RELEASED, tuple(sorted(p for p, k in new.edges if k == key)))
        for key, ident in sorted(new.identities.items())
        if ident.linking and (was := old.identities.get(key)) is not None and not was.linking and was.contested
    ]
    return _saturated(_stopped(old, new)) + [d for d in released if d.profile_ids]


def _plan(g: Graph, profile_ids: Sequence[str]) -> ErasurePlan:
    """What erasing these profiles deletes (identities no other profile holds, their records) and keeps."""
    present = [pid for pid in profile_ids if pid in g.profiles]
    held = {k for p, k in g.edges if p in present}
    elsewhere = {k for p, k in g.edges if k in held and p not in profile_ids}
    records = [ErasedRecord(p, g.profiles[p].source, g.profiles[p].source_id) for p in sorted(present)]
    return ErasurePlan(
        tuple(sorted(profile_ids)), tuple(sorted(held - elsewhere)), tuple(sorted(held & elsewhere)), tuple(records)
    )
