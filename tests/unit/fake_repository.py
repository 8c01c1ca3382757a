"""An in-memory Repository (app/services/ports.py) for unit tests of the use cases: no Neo4j, no I/O.

The graph of the Cypher files as dicts: profiles, identities, one edge per (profile, identity) (an IdentityLink:
`linking` is HAS_IDENTITY, else OBSERVED), merge edges, the suppression list, erasure receipts. Where the use cases
depend on it, it does what app/db does: a customer is the walk over linking and merge edges from a seed, truncated
beyond max_nodes nodes (profiles and identities); a saturated identity gives the customers of up to `candidates` of
its OBSERVED holders, a blocked one none; an upsert applies write_profiles.cypher's fan-out rule, then raises
SuppressedMeanwhile (an identity's or record's hash is suppressed) or TooManyIdentities, writing nothing (writes work
on a copy of the graph); an erasure plans, deletes, suppresses and keeps a receipt with its subject.

Simpler on purpose, where no use case depends on it: each call is one atomic step (no locks, retries, Interfered);
tokens are opaque "fake-<n>" strings (one not issued here is InvalidInput) and `leader` is ignored; no cap on the
links read per profile; walks go in sorted order and a saturated identity's holders in profile id order (Neo4j's is
unspecified); explain gives one shortest chain; no key fingerprint, placeholders, version counter or edge rule_version.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

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
    NormalizedIdentity,
    Profile,
    Scalar,
    StoredIdentity,
)
from app.errors import Conflict, InvalidInput
from app.services.ports import (
    ProfileComponent,
    ProfileWrite,
    Snapshot,
    SuppressedMeanwhile,
    TooManyIdentities,
    WriteOutcome,
)

Node = str | IdentityKey  # a profile by id, or an identity


_Receipt = tuple[ErasureReceipt, str | None, tuple[str, ...]]  # the receipt, its subject, the profiles it deleted
_Holders = dict[str, tuple[NormalizedIdentity, str]]  # profile id -> the value and source of the row naming it first


@dataclass
class _Graph:
    profiles: dict[str, Profile] = field(default_factory=dict)  # Profile.identities left empty: edges say
    identities: dict[IdentityKey, StoredIdentity] = field(default_factory=dict)  # profile_count counted on read
    edges: dict[tuple[str, IdentityKey], IdentityLink] = field(default_factory=dict)
    merges: dict[tuple[str, str], MergeEdge] = field(default_factory=dict)
    suppressions: dict[str, str] = field(default_factory=dict)  # keyed hash -> request id
    receipts: dict[str, _Receipt] = field(default_factory=dict)


class InMemoryRepository:
    def __init__(self) -> None:
        self.graph = _Graph()
        self._tokens: set[str] = set()

    def _token(self) -> str:
        token = f"fake-{len(self._tokens) + 1}"
        self._tokens.add(token)
        return token

    def _check_token(self, consistency: str | None) -> None:
        if consistency and consistency not in self._tokens:
            raise InvalidInput("consistencyToken is not a token this service issued")

    @staticmethod
    def _neighbours(g: _Graph, node: Node) -> list[Node]:
        """Nodes one linking edge or merge edge (either direction) away."""
        if isinstance(node, IdentityKey):
            return sorted(p for (p, k), e in g.edges.items() if k == node and e.linking)
        found: list[Node] = sorted((k for (p, k), e in g.edges.items() if p == node and e.linking))
        return found + sorted({t if s == node else s for s, t in g.merges if node in (s, t)})

    def _walk(self, g: _Graph, start: Node, max_nodes: int | None) -> dict[Node, Node | None]:
        """Breadth-first from start: each node reached with the node it was reached from, at most max_nodes + 1."""
        parents: dict[Node, Node | None] = {start: None}
        queue = deque([start])
        while queue and (max_nodes is None or len(parents) <= max_nodes):
            here = queue.popleft()
            for there in self._neighbours(g, here):
                if there not in parents and (max_nodes is None or len(parents) <= max_nodes):
                    parents[there] = here
                    queue.append(there)
        return parents

    def _component(self, g: _Graph, start: Node, max_nodes: int) -> ProfileComponent:
        nodes = self._walk(g, start, max_nodes)
        return ProfileComponent(tuple(n for n in nodes if isinstance(n, str)), len(nodes) > max_nodes)

    @staticmethod
    def _stored(g: _Graph, key: IdentityKey) -> StoredIdentity:
        return replace(g.identities[key], profile_count=sum(1 for _, k in g.edges if k == key))

    def _details(self, g: _Graph, profile_ids: Iterable[str]) -> Component:
        """Every given profile with its edges, identities and merges."""
        members = list(dict.fromkeys(profile_ids))
        links = tuple(e for e in g.edges.values() if e.profile_id in members)
        held = {pid: tuple(sorted(k for p, k in g.edges if p == pid)) for pid in members}
        profiles = tuple(replace(g.profiles[pid], identities=held[pid]) for pid in members)
        identities = {k: self._stored(g, k) for pid in members for k in held[pid]}
        merges = tuple(m for (s, _), m in g.merges.items() if s in held)
        return Component(profiles, tuple(identities.values()), links, merges)

    def _profiles_snapshot(self, g: _Graph, profile_ids: Sequence[str], max_nodes: int) -> Snapshot:
        components: dict[str | IdentityKey, ProfileComponent] = {
            pid: self._component(g, pid, max_nodes) for pid in profile_ids if pid in g.profiles
        }
        members = [p for part in components.values() for p in part.profile_ids]
        return Snapshot((), components, self._details(g, members))

    async def read_identities(
        self,
        keys: Sequence[IdentityKey],
        *,
        max_nodes: int,
        candidates: int = 5,
        consistency: str | None = None,
        leader: bool = False,
    ) -> Snapshot:
        self._check_token(consistency)
        g = self.graph
        stored: dict[IdentityKey, StoredIdentity] = {}
        components: dict[str | IdentityKey, ProfileComponent] = {}
        for key in keys:
            if key not in g.identities:
                continue
            found = stored[key] = self._stored(g, key)
            if found.blocked:
                continue
            observed = sorted(p for (p, k), e in g.edges.items() if k == key and not e.linking)
            starts: Sequence[Node] = observed[:candidates] if found.saturated else [key]
            for start in starts:
                part = self._component(g, start, max_nodes)
                if part.profile_ids:
                    components[start] = part
        members = [p for part in components.values() for p in part.profile_ids]
        return Snapshot(tuple(stored.values()), components, self._details(g, members))

    async def read_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> Snapshot:
        self._check_token(consistency)
        return self._profiles_snapshot(self.graph, profile_ids, max_nodes)

    async def components_of_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> dict[str, ProfileComponent]:
        self._check_token(consistency)
        return {p: self._component(self.graph, p, max_nodes) for p in profile_ids if p in self.graph.profiles}

    async def suppressed_among(self, hashes: Sequence[str]) -> set[str]:
        return {h for h in hashes if h in self.graph.suppressions}

    async def explain(self, profile_a: str, profile_b: str, *, max_nodes: int) -> Explanation | None:
        g = self.graph
        if profile_a not in g.profiles or profile_b not in g.profiles:
            return None
        from_a, from_b = self._walk(g, profile_a, max_nodes), self._walk(g, profile_b, max_nodes)
        whole_a, whole_b = len(from_a) <= max_nodes, len(from_b) <= max_nodes
        linked = (whole_a and profile_b in from_a) or (whole_b and profile_a in from_b)
        if not linked and not ((whole_a and profile_b not in from_a) or (whole_b and profile_a not in from_b)):
            raise Conflict(f"the customer has more than {max_nodes} nodes: too large to explain")
        if not linked or profile_a == profile_b:
            return Explanation((profile_a, profile_b), profile_a == profile_b, ())
        parents = self._walk(g, profile_a, None)
        steps: list[ExplanationStep] = []
        here = profile_b
        while (there := parents[here]) is not None:  # back from b to a
            if isinstance(there, IdentityKey):
                back = str(parents[there])
                steps.append(ExplanationStep(back, here, "IDENTITY", there, g.edges[back, there], g.edges[here, there]))
            else:
                back = there
                steps.append(
                    ExplanationStep(back, here, "MERGE", merge=g.merges.get((back, here), g.merges.get((here, back))))
                )
            here = back
        return Explanation((profile_a, profile_b), True, tuple(reversed(steps)))

    async def export_rows(self, *, batch_size: int) -> AsyncIterator[ExportRow]:
        g = self.graph
        whole = len(g.profiles) + len(g.identities)  # the export's components are whole, however large
        for pid, profile in sorted(g.profiles.items()):
            oldest = min(self._component(g, pid, whole).profile_ids, key=lambda p: (g.profiles[p].created_at, p))
            yield ExportRow(pid, profile.source, profile.source_id, oldest)

    async def upsert_profiles(
        self,
        rows: Sequence[ProfileWrite],
        *,
        now: datetime,
        max_profiles_per_identity: int,
        snapshot_nodes: int | None = None,
        max_identities_per_profile: int = 0,
    ) -> tuple[list[WriteOutcome | None], str, Snapshot | None]:
        g = copy.deepcopy(self.graph)  # a transaction: it becomes the graph only if nothing below raises
        outcomes: list[WriteOutcome | None] = [None] * len(rows)
        # per identity: profile id -> (normalized value, source) of the first row naming it; its hash; blocked
        holders: dict[IdentityKey, _Holders] = {}
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
        snapshot = None if snapshot_nodes is None else self._profiles_snapshot(g, stored, snapshot_nodes)
        self.graph = g
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
    ) -> str | None:
        g = self.graph
        for seed in (source_id, target_id):
            if seed in g.profiles and self._component(g, seed, max_nodes).truncated:
                raise Conflict(f"the customers have more than {max_nodes} nodes; merge is refused")
        if source_id not in g.profiles or target_id not in g.profiles:
            return None
        check(self._profiles_snapshot(g, [source_id, target_id], max_nodes))
        g.merges.setdefault((source_id, target_id), MergeEdge(source_id, target_id, now, by, reason))
        return self._token()

    async def unmerge_profiles(self, source_id: str, target_id: str) -> tuple[bool, str]:
        return self.graph.merges.pop((source_id, target_id), None) is not None, self._token()

    async def unlink_identity(self, profile_id: str, key: IdentityKey) -> tuple[bool, str]:
        g = self.graph
        removed = g.edges.pop((profile_id, key), None) is not None
        if key in g.identities and not any(k == key for _, k in g.edges):
            del g.identities[key]
        return removed, self._token()

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
        self.graph = g
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
        return receipt

    async def erasure_receipt(self, request_id: str) -> ErasureReceipt | None:
        return self.graph.receipts[request_id][0] if request_id in self.graph.receipts else None


def _profile_of(g: _Graph, row: ProfileWrite, now: datetime) -> Profile | None:
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


def _write_edges(g: _Graph, key: IdentityKey, holders: _Holders, blocked: bool, limit: int, now: datetime) -> None:
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


def _plan(g: _Graph, profile_ids: Sequence[str]) -> ErasurePlan:
    """What erasing these profiles deletes (identities no other profile holds, their records) and keeps."""
    present = [pid for pid in profile_ids if pid in g.profiles]
    held = {k for p, k in g.edges if p in present}
    elsewhere = {k for p, k in g.edges if k in held and p not in profile_ids}
    records = [ErasedRecord(p, g.profiles[p].source, g.profiles[p].source_id) for p in sorted(present)]
    return ErasurePlan(
        tuple(sorted(profile_ids)), tuple(sorted(held - elsewhere)), tuple(sorted(held & elsewhere)), tuple(records)
    )
