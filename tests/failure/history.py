"""The history of a concurrent run (every operation with its invocation and completion time and outcome) and what the
final graph must and may hold after it.

What is well-defined when operations overlap. An operation's effect happens at one instant between its invocation and
its completion (its commit). Two operations that do not overlap are ordered; two that overlap may take effect in
either order. So for each element of the final graph the history gives a lower bound (what every admissible order
leaves) and an upper bound (what some admissible order could leave); with no overlapping conflicting operations the
two bounds meet and the check is exact.

Outcomes: "ok" (acknowledged: a response without errors), "fail" (an error that is refused before anything is
written: INVALID_INPUT, SUPPRESSED, CONFLICT, or NOT_FOUND where the service checks before writing), and "unknown"
(anything else: the write may or may not have happened).

The facts the model relies on:
- profile ids are never reused: an erased profile never comes back (a later upsert of its source record gets a new id);
- identities are only added to a profile (this workload never unlinks), so a present profile holds at least what the
  acknowledged writes to it stored and at most what any write to it sent;
- a MERGED_INTO edge is added by a merge and removed by an unmerge (or with either profile);
- an erasure deletes the connected component of its target as it is when the erasure takes effect, and adds the
  component's values to the suppression list, which every later upsert consults.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from app.domain.model import IdentityKey

Outcome = Literal["ok", "fail", "unknown"]
Kind = Literal["upsert", "link", "merge", "unmerge", "erase", "resolve"]

# Error codes raised before anything is written, by operation (see app/services/identity.py).
NO_EFFECT: dict[str, frozenset[str]] = {
    "upsert": frozenset({"INVALID_INPUT", "SUPPRESSED"}),
    "link": frozenset({"INVALID_INPUT", "SUPPRESSED"}),
    "merge": frozenset({"INVALID_INPUT", "CONFLICT"}),
    "unmerge": frozenset({"INVALID_INPUT", "NOT_FOUND"}),  # NOT_FOUND: the unmerge removed no edge
    "erase": frozenset({"INVALID_INPUT", "NOT_FOUND", "CONFLICT"}),
    "resolve": frozenset(),
}


@dataclass
class Op:
    client: int
    kind: Kind
    args: dict[str, Any]
    invoked: float
    completed: float = math.inf
    outcome: Outcome = "unknown"
    code: str = ""
    result: Any = None
    sent: frozenset[IdentityKey] = frozenset()  # normalized identities the operation sent
    stored: frozenset[IdentityKey] = frozenset()  # those an acknowledged upsert or link stored
    profile_id: str | None = None  # the profile an upsert or link wrote (from the response, or the argument)
    record: tuple[str, str] | None = None  # (source, sourceId) of an upsert
    effective: bool = False  # an acknowledged merge whose response shows the source in the target's customer

    def finish(self, at: float, code: str, result: Any) -> None:
        self.completed = at
        self.code = code
        self.result = result
        if not code:
            self.outcome = "ok"
        elif code in NO_EFFECT[self.kind]:
            self.outcome = "fail"
        else:
            self.outcome = "unknown"

    @property
    def may_have_written(self) -> bool:
        return self.outcome != "fail"

    @property
    def pair(self) -> tuple[str, str]:
        return str(self.args["s"]), str(self.args["t"])

    def __str__(self) -> str:
        span = f"[{self.invoked:.3f}, {self.completed:.3f}]"
        return f"client {self.client} {self.kind} {span} {self.outcome} {self.code} args={self.args}"


@dataclass
class FinalGraph:
    """The graph after the run, read with Cypher."""

    profiles: dict[str, tuple[str, str | None]]  # id -> (source, source_id)
    links: set[tuple[str, IdentityKey]]  # HAS_IDENTITY
    observed: set[tuple[str, IdentityKey]]  # OBSERVED
    merges: set[tuple[str, str]]
    identities: set[IdentityKey]
    suppressed: set[str]  # HMAC hashes on the suppression list
    receipts: set[str]  # request ids


class UnionFind:
    def __init__(self, items: Iterable[str] = ()) -> None:
        self.parent: dict[str, str] = {}
        for item in items:
            self.find(item)

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb

    def groups(self, among: Iterable[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for x in among:
            out[self.find(x)].add(x)
        return out


def _ident(key: IdentityKey) -> str:
    return f"identity:{key.key}:{key.value}"


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        if len(self.violations) < 40:
            self.violations.append(message)


class Checker:
    def __init__(self, ops: list[Op], final: FinalGraph, hash_of: dict[IdentityKey, str]) -> None:
        self.ops = sorted(ops, key=lambda o: o.invoked)
        self.final = final
        self.hash_of = hash_of
        self.verdict = Verdict()

    def writes(self, *kinds: Kind) -> Iterator[Op]:
        return (o for o in self.ops if o.kind in kinds)

    def run(self) -> Verdict:
        self.check_no_erased_value_is_back()
        self.check_profiles_hold_their_acknowledged_identities()
        self.check_every_vanished_profile_was_reachable_by_an_erasure()
        self.check_acknowledged_erasures()
        must, may = self.check_merge_edges()
        self.check_components(must, may)
        return self.verdict

    # -- profiles and their identities ----------------------------------------------------------------------------

    def check_profiles_hold_their_acknowledged_identities(self) -> None:
        must: dict[str, set[IdentityKey]] = defaultdict(set)
        may: dict[str, set[IdentityKey]] = defaultdict(set)
        may_by_record: dict[tuple[str, str], set[IdentityKey]] = defaultdict(set)
        known: set[str] = set()
        for op in self.writes("upsert", "link"):
            if op.outcome == "ok":
                assert op.profile_id is not None
                known.add(op.profile_id)
                must[op.profile_id] |= op.stored
                may[op.profile_id] |= op.stored
            elif op.outcome == "unknown":
                if op.kind == "link" and op.profile_id is not None:
                    may[op.profile_id] |= op.sent
                elif op.record is not None:
                    may_by_record[op.record] |= op.sent
        held: dict[str, set[IdentityKey]] = defaultdict(set)
        for pid, key in self.final.links | self.final.observed:
            held[pid].add(key)
        for pid, (source, source_id) in self.final.profiles.items():
            record = (source, source_id or "")
            if pid not in known and record not in may_by_record:
                self.verdict.fail(f"profile {pid} ({source}/{source_id}) exists but no write could have created it")
            missing = must[pid] - held[pid]
            if missing:
                self.verdict.fail(f"profile {pid} lost acknowledged identities {sorted(missing)}")
            extra = held[pid] - may[pid] - may_by_record[record]
            if extra:
                self.verdict.fail(f"profile {pid} holds identities no write sent to it: {sorted(extra)}")
        if self.final.observed:
            self.verdict.fail(f"{len(self.final.observed)} OBSERVED edges: nothing in this workload is blocked")

    # -- erasures -------------------------------------------------------------------------------------------------

    def _may_graph_until(self, until: float) -> UnionFind:
        """Everything any write invoked before `until` could have linked."""
        uf = UnionFind()
        by_record: dict[tuple[str, str], list[str]] = defaultdict(list)
        for op in self.writes("upsert", "link"):
            if op.outcome == "ok" and op.record is not None and op.profile_id is not None:
                by_record[op.record].append(op.profile_id)
        for op in self.writes("upsert", "link", "merge"):
            if op.invoked >= until or not op.may_have_written:
                continue
            if op.kind == "merge":
                uf.union(*op.pair)
                continue
            node = op.profile_id or (f"record:{op.record}" if op.record else None)
            if node is None:
                continue
            for key in op.sent:
                uf.union(node, _ident(key))
            if op.record is not None:
                for pid in by_record[op.record]:
                    uf.union(node, pid)
        return uf

    def check_every_vanished_profile_was_reachable_by_an_erasure(self) -> None:
        first_seen: dict[str, Op] = {}
        for op in self.writes("upsert", "link"):
            if op.outcome == "ok" and op.profile_id is not None:
                first_seen.setdefault(op.profile_id, op)
        vanished = {pid: op for pid, op in first_seen.items() if pid not in self.final.profiles}
        if not vanished:
            return
        erasures = [op for op in self.writes("erase") if op.may_have_written]
        graphs = {id(e): self._may_graph_until(e.completed) for e in erasures}
        for pid, created in vanished.items():
            if not any(
                e.completed > created.invoked and graphs[id(e)].find(str(e.args["id"])) == graphs[id(e)].find(pid)
                for e in erasures
            ):
                self.verdict.fail(f"acknowledged profile {pid} vanished; no erasure could reach it ({created})")

    def _stable_graph_before(self, erasure: Op) -> tuple[UnionFind, dict[str, set[IdentityKey]]]:
        """What was certainly linked when `erasure` took effect: acknowledged writes that completed before it was
        invoked, minus merge edges an unmerge could have removed by the time it completed."""
        uf = UnionFind()
        holds: dict[str, set[IdentityKey]] = defaultdict(set)
        for op in self.writes("upsert", "link"):
            if op.outcome == "ok" and op.completed < erasure.invoked and op.profile_id is not None:
                uf.find(op.profile_id)
                holds[op.profile_id] |= op.stored
                for key in op.stored:
                    uf.union(op.profile_id, _ident(key))
        for merge in self.writes("merge"):
            if merge.outcome != "ok" or not merge.effective or merge.completed >= erasure.invoked:
                continue
            undone = any(
                u.may_have_written
                and u.pair == merge.pair
                and u.completed > merge.invoked
                and u.invoked < erasure.completed
                for u in self.writes("unmerge")
            )
            if not undone:
                uf.union(*merge.pair)
        return uf, holds

    def check_acknowledged_erasures(self) -> None:
        for erasure in self.writes("erase"):
            if erasure.outcome != "ok":
                continue
            request_id = str(erasure.args["rid"])
            if request_id not in self.final.receipts:
                self.verdict.fail(f"acknowledged erasure {request_id} has no receipt")
            uf, holds = self._stable_graph_before(erasure)
            target = str(erasure.args["id"])
            root = uf.find(target)
            erased = [pid for pid in holds if uf.find(pid) == root] + [target]
            values: set[IdentityKey] = set()
            for pid in erased:
                if pid in self.final.profiles:
                    self.verdict.fail(f"profile {pid} survived erasure {request_id} of its customer ({erasure})")
                values |= holds.get(pid, set())
            for key in sorted(values):
                if key in self.final.identities:
                    self.verdict.fail(f"identity {key} erased by {request_id} is in the graph again")
                if self.hash_of[key] not in self.final.suppressed:
                    self.verdict.fail(f"identity {key} erased by {request_id} is not on the suppression list")

    def check_no_erased_value_is_back(self) -> None:
        """A suppressed value is in the graph only when an erasure missed a holder or an upsert slipped past the
        suppression check: in every admissible order the erasure deletes all holders and later upserts are refused."""
        for key in sorted(self.final.identities):
            digest = self.hash_of.get(key)
            if digest is not None and digest in self.final.suppressed:
                holders = sorted(pid for pid, k in self.final.links | self.final.observed if k == key)
                self.verdict.fail(f"suppressed (erased) identity {key} is in the graph, held by {holders}")

    # -- merges and components ------------------------------------------------------------------------------------

    def check_merge_edges(self) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        present = self.final.profiles
        must: set[tuple[str, str]] = set()
        may: set[tuple[str, str]] = set()
        unmerges = list(self.writes("unmerge"))
        for merge in self.writes("merge"):
            pair = merge.pair
            if pair[0] not in present or pair[1] not in present or not merge.may_have_written:
                continue
            if not any(u.outcome == "ok" and u.pair == pair and u.invoked > merge.completed for u in unmerges):
                may.add(pair)
            if (
                merge.outcome == "ok"
                and merge.effective
                and not any(u.may_have_written and u.pair == pair and u.completed > merge.invoked for u in unmerges)
            ):
                must.add(pair)
        for pair in sorted(must - self.final.merges):
            self.verdict.fail(f"acknowledged merge {pair} is missing (no unmerge could have removed it)")
        for pair in sorted(self.final.merges - may):
            self.verdict.fail(f"merge edge {pair} exists but no admissible order leaves it")
        self.verdict.notes.append(f"merge edges: {len(must)} certain, {len(may - must)} order-dependent")
        return must, may

    def check_components(self, must_merges: set[tuple[str, str]], may_merges: set[tuple[str, str]]) -> None:
        """Components of the graph the acknowledged operations certainly built (a union-find over their final edge
        set) never split across customers; the graph's components never join what no admissible order joins."""
        present = set(self.final.profiles)
        must, may, actual = UnionFind(present), UnionFind(present), UnionFind(present)
        for op in self.writes("upsert", "link"):
            if op.profile_id in present and op.may_have_written:
                for key in op.stored if op.outcome == "ok" else op.sent:
                    may.union(op.profile_id, _ident(key))
                    if op.outcome == "ok":
                        must.union(op.profile_id, _ident(key))
            elif op.outcome == "unknown" and op.record is not None:
                for pid, (source, source_id) in self.final.profiles.items():
                    if (source, source_id or "") == op.record:
                        for key in op.sent:
                            may.union(pid, _ident(key))
        for s, t in must_merges:
            must.union(s, t)
        for s, t in may_merges:
            may.union(s, t)
        for pid, key in self.final.links:
            actual.union(pid, _ident(key))
        for s, t in self.final.merges:
            actual.union(s, t)
        for group in must.groups(present).values():
            labels = {actual.find(p) for p in group}
            if len(labels) > 1:
                self.verdict.fail(f"profiles {sorted(group)} must be one customer but the graph splits them")
        for group in actual.groups(present).values():
            labels = {may.find(p) for p in group}
            if len(labels) > 1:
                self.verdict.fail(f"the graph joins profiles {sorted(group)} that no admissible order joins")
        sizes = sorted((len(g) for g in must.groups(present).values()), reverse=True)
        self.verdict.notes.append(
            f"{len(present)} profiles in {len(actual.groups(present))} customers "
            f"(certain: {len(sizes)}, possible: {len(may.groups(present))}); largest {sizes[:5]}"
        )


def components_of(final: FinalGraph) -> dict[str, frozenset[str]]:
    """Each present profile's customer (its connected component over HAS_IDENTITY and MERGED_INTO), as profile ids."""
    uf = UnionFind(final.profiles)
    for pid, key in final.links:
        uf.union(pid, _ident(key))
    for s, t in final.merges:
        uf.union(s, t)
    groups = uf.groups(final.profiles)
    return {pid: frozenset(groups[uf.find(pid)]) for pid in final.profiles}
