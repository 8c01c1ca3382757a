"""Re-normalization of stored identities: what to do with each one, and how edges fold onto a normalized value.

Pure: the storage layer reads the graph, these functions decide, the storage layer writes the decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.fanout import Holding, IdentityState, plan_links
from app.domain.model import IdentityKey, NormalizedIdentity, Rejection, StoredIdentity
from app.domain.normalize import normalize
from app.domain.strategy import Strategy


class Verdict(StrEnum):
    KEEP = "KEEP"  # already the normalized form of itself
    FOLD = "FOLD"  # not normalized: its edges move onto the node of the normalized value
    BLOCK = "BLOCK"  # normalized, but now on the strategy's blocked list and not yet marked
    REJECTED = "REJECTED"  # no longer normalizes at all (or its key left the strategy): reported, kept


@dataclass(frozen=True)
class Review:
    """The verdict on one stored identity under the current strategy."""

    stored: StoredIdentity
    verdict: Verdict
    target: NormalizedIdentity | None = None  # FOLD: the normalized value; KEEP/BLOCK: itself, normalized again
    rejection: Rejection | None = None  # REJECTED: why

    @property
    def stale_rule(self) -> bool:
        """KEEP or BLOCK, but stored with another rule or rule version than the current strategy's."""
        return (
            self.target is not None
            and self.verdict is not Verdict.FOLD
            and (self.stored.rule != str(self.target.rule) or self.stored.rule_version != self.target.rule_version)
        )


def review(strategy: Strategy, stored: StoredIdentity) -> Review:
    result = normalize(strategy, stored.key, stored.value)
    if isinstance(result, Rejection):
        return Review(stored, Verdict.REJECTED, rejection=result)
    if result.value != stored.value:
        return Review(stored, Verdict.FOLD, target=result)
    if strategy.is_blocked(result.identity) and not stored.blocked:
        return Review(stored, Verdict.BLOCK, target=result)
    return Review(stored, Verdict.KEEP, target=result)


@dataclass(frozen=True)
class EdgeProps:
    raw: str | None
    source: str | None
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class FoldEdge:
    """One edge of an identity being folded away, with the edge its profile may already have to the target."""

    profile_id: str
    old: IdentityKey
    target: IdentityKey
    edge: EdgeProps
    target_edge: EdgeProps | None  # the profile's existing edge to the target, if any


@dataclass(frozen=True)
class FoldedLink:
    """The one edge a profile keeps to a target: created, or the existing one widened."""

    profile_id: str
    target: IdentityKey
    props: EdgeProps
    linking: bool  # for a created edge: HAS_IDENTITY (True) or OBSERVED
    exists: bool


@dataclass(frozen=True)
class FoldPlan:
    links: tuple[FoldedLink, ...]
    saturate: tuple[IdentityKey, ...]  # targets that end up shared by more profiles than the fan-out limit
    edges_moved: int  # edges of the folded identities (each one is moved or merged into another)
    edges_merged: int  # of those, edges that joined an edge the profile already had, or another moved edge


def plan_fold(
    edges: Sequence[FoldEdge],
    targets: Mapping[IdentityKey, NormalizedIdentity],
    states: Mapping[IdentityKey, IdentityState],
    limit: int,
) -> FoldPlan:
    """Fold edges onto their targets: one edge per (profile, target), with the earliest first_seen and the latest
    last_seen (raw and source of the most recently seen spelling). Which targets stop linking is the write path's
    fan-out rule (`plan_links`), applied to the profiles the fold gives each target."""
    groups: dict[tuple[str, IdentityKey], list[FoldEdge]] = defaultdict(list)
    for edge in edges:
        groups[(edge.profile_id, edge.target)].append(edge)
    held = {
        pair: next((e.target_edge for e in group if e.target_edge is not None), None) for pair, group in groups.items()
    }
    holdings = [Holding(profile_id, targets[target], "") for profile_id, target in groups]
    existing = {pair for pair, edge in held.items() if edge is not None}
    saturate, _ = plan_links(holdings, existing, states, limit)
    nonlinking = set(saturate) | {k for k, s in states.items() if s.saturated or s.blocked}
    links: list[FoldedLink] = []
    merged = 0
    for (profile_id, target), group in groups.items():
        existing_edge = held[(profile_id, target)]
        candidates = [e.edge for e in group] + ([existing_edge] if existing_edge is not None else [])
        merged += len(candidates) - 1
        # A new edge links unless the target does not (blocked, saturated, or saturated by this very fold: its
        # other edges are turned too); an existing edge keeps its kind.
        linking = target not in nonlinking
        links.append(FoldedLink(profile_id, target, _widest(candidates), linking, existing_edge is not None))
    return FoldPlan(tuple(links), tuple(saturate), len(edges), merged)


def _widest(candidates: Iterable[EdgeProps]) -> EdgeProps:
    items = list(candidates)
    firsts = [c.first_seen for c in items if c.first_seen is not None]
    lasts = [c.last_seen for c in items if c.last_seen is not None]
    # The spelling seen last is the one the write path would have kept (it refreshes raw on every write).
    dated = [c for c in items if c.last_seen is not None]
    latest = max(dated, key=lambda c: c.last_seen or datetime.min) if dated else items[0]
    return EdgeProps(latest.raw, latest.source, min(firsts, default=None), max(lasts, default=None))


@dataclass(frozen=True)
class Fold:
    """One stored identity whose value is not the normalized form of itself, and the value it folds onto."""

    old: IdentityKey
    target: NormalizedIdentity
    blocked: bool  # the target is on the strategy's blocked list
    suppression_hash: str  # the target's keyed hash: when it is on the suppression list, nothing folds onto it


@dataclass(frozen=True)
class FoldOutcome:
    plan: FoldPlan
    identities_created: int  # targets that did not exist before the fold
    identities_deleted: int
    edges_blocked: int  # linking edges of targets newly blocked, turned into observations
    # Values whose target is on the suppression list (an erased person's): deleted with their edges, not folded.
    suppressed: int = 0
    contested: int = 0  # identities the fold made contested (their holders now hold too many values of a key)
