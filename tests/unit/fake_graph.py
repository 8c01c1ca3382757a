"""The in-memory graph of tests/unit/fake_repository.py and its reads: customers as walks over linking and merge
edges, resolve snapshots, explain and export (see fake_repository.py for what it models and what it simplifies)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace

from app.domain.model import (
    Component,
    ErasureReceipt,
    Explanation,
    ExplanationStep,
    ExportRow,
    IdentityKey,
    IdentityLink,
    MergeEdge,
    NormalizedIdentity,
    Profile,
    StoredIdentity,
)
from app.errors import Conflict, InvalidInput
from app.services.ports import ProfileComponent, Snapshot
from tests.unit.fake_changes import FakeChangeLog

Node = str | IdentityKey  # a profile by id, or an identity

Receipt = tuple[ErasureReceipt, str | None, tuple[str, ...]]  # the receipt, its subject, the profiles it deleted
Holders = dict[str, tuple[NormalizedIdentity, str]]  # profile id -> the value and source of the row naming it first


@dataclass
class Graph:
    profiles: dict[str, Profile] = field(default_factory=dict)  # Profile.identities left empty: edges say
    identities: dict[IdentityKey, StoredIdentity] = field(default_factory=dict)  # profile_count counted on read
    edges: dict[tuple[str, IdentityKey], IdentityLink] = field(default_factory=dict)
    merges: dict[tuple[str, str], MergeEdge] = field(default_factory=dict)
    suppressions: dict[str, str] = field(default_factory=dict)  # keyed hash -> request id
    receipts: dict[str, Receipt] = field(default_factory=dict)


class FakeGraphReads(FakeChangeLog):
    """The graph and the reads of the in-memory repository (tests/unit/fake_repository.py adds the writes)."""

    def __init__(self) -> None:
        super().__init__()
        self.graph = Graph()
        self._tokens: set[str] = set()

    def _oldest(self, g: Graph, profile_id: str, max_nodes: int) -> str | None:
        """The customer id of a profile: the oldest profile of its component (None when truncated)."""
        part = self._component(g, profile_id, max_nodes)
        members = [p for p in part.profile_ids if p in g.profiles]
        if part.truncated or not members:
            return None
        return min(members, key=lambda p: (g.profiles[p].created_at, p))

    def _token(self) -> str:
        token = f"fake-{len(self._tokens) + 1}"
        self._tokens.add(token)
        return token

    def _check_token(self, consistency: str | None) -> None:
        if consistency and consistency not in self._tokens:
            raise InvalidInput("consistencyToken is not a token this service issued")

    @staticmethod
    def _neighbours(g: Graph, node: Node) -> list[Node]:
        """Nodes one linking edge or merge edge (either direction) away."""
        if isinstance(node, IdentityKey):
            return sorted(p for (p, k), e in g.edges.items() if k == node and e.linking)
        found: list[Node] = sorted((k for (p, k), e in g.edges.items() if p == node and e.linking))
        return found + sorted({t if s == node else s for s, t in g.merges if node in (s, t)})

    def _walk(self, g: Graph, start: Node, max_nodes: int | None) -> dict[Node, Node | None]:
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

    def _component(self, g: Graph, start: Node, max_nodes: int) -> ProfileComponent:
        nodes = self._walk(g, start, max_nodes)
        return ProfileComponent(tuple(n for n in nodes if isinstance(n, str)), len(nodes) > max_nodes)

    @staticmethod
    def _stored(g: Graph, key: IdentityKey) -> StoredIdentity:
        return replace(g.identities[key], profile_count=sum(1 for _, k in g.edges if k == key))

    def _details(self, g: Graph, profile_ids: Iterable[str]) -> Component:
        """Every given profile with its edges, identities and merges."""
        members = list(dict.fromkeys(profile_ids))
        links = tuple(e for e in g.edges.values() if e.profile_id in members)
        held = {pid: tuple(sorted(k for p, k in g.edges if p == pid)) for pid in members}
        profiles = tuple(replace(g.profiles[pid], identities=held[pid]) for pid in members)
        identities = {k: self._stored(g, k) for pid in members for k in held[pid]}
        merges = tuple(m for (s, _), m in g.merges.items() if s in held)
        return Component(profiles, tuple(identities.values()), links, merges)

    def _profiles_snapshot(self, g: Graph, profile_ids: Sequence[str], max_nodes: int) -> Snapshot:
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
            starts: Sequence[Node] = observed[:candidates] if found.saturated or found.contested else [key]
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
