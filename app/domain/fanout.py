"""The fan-out rule: which new edges link profiles, and which identities stop linking in this write.

An identity held by more profiles than the strategy's limit would join unrelated people (a switchboard number,
a shared test address); it stops linking: its edges become non-linking observations. Blocked values never link.

Upserts apply this rule inside their one write statement (cypher/write_profiles.cypher), where the link counts are
read under the identities' locks; `plan_links` is the rule in Python, used to plan re-normalization folds and to
state the rule in unit tests. The integration tests hold both to the same outcomes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.domain.model import IdentityKey, NormalizedIdentity


@dataclass(frozen=True)
class IdentityState:
    """An identity as locked by the write: how many profiles it links now, and its flags."""

    linking: int
    saturated: bool
    blocked: bool


@dataclass(frozen=True)
class Holding:
    """A profile given an identity by this write."""

    profile_id: str
    identity: NormalizedIdentity
    source: str


@dataclass(frozen=True)
class LinkWrite:
    holding: Holding
    linking: bool  # HAS_IDENTITY when true, OBSERVED otherwise
    exists: bool  # the profile already holds the identity: refresh the edge, create nothing


def plan_links(
    holdings: Sequence[Holding],
    existing: set[tuple[str, IdentityKey]],
    states: Mapping[IdentityKey, IdentityState],
    limit: int,
) -> tuple[list[IdentityKey], list[LinkWrite]]:
    """Identities to saturate now (sorted), and one edge write per distinct (profile, identity)."""
    new_holders: dict[IdentityKey, set[str]] = defaultdict(set)
    for h in holdings:
        if (h.profile_id, h.identity.identity) not in existing:
            new_holders[h.identity.identity].add(h.profile_id)
    saturate = sorted(
        key
        for key, holders in new_holders.items()
        if limit > 0
        and not states[key].saturated
        and not states[key].blocked
        and states[key].linking + len(holders) > limit
    )
    nonlinking = set(saturate) | {k for k, s in states.items() if s.saturated or s.blocked}
    writes: list[LinkWrite] = []
    seen: set[tuple[str, IdentityKey]] = set()
    for h in holdings:
        pair = (h.profile_id, h.identity.identity)
        if pair in seen:
            continue
        seen.add(pair)
        writes.append(LinkWrite(h, linking=h.identity.identity not in nonlinking, exists=pair in existing))
    return saturate, writes
