"""The fan-out rule: which new edges link profiles, and which identities stop linking in this write.

An identity held by more profiles than the strategy's limit would join unrelated people (a switchboard number,
a shared test address); it stops linking: its edges become non-linking observations. Blocked values never link.
The contested rule (`contested_by`): an identity whose holders together hold more distinct values of a key with
max_per_customer than it allows would join different people (a household landline shared by two account holders);
it stops linking too, and links again once the conflict goes away. Stored writes apply it in
cypher/contest_identities.cypher, under the identities' locks, in the transaction that changed the holders.

Upserts apply this rule inside their one write statement (cypher/write_profiles.cypher), where the link counts are
read under the identities' locks; `plan_links` is the rule in Python, used to plan re-normalization folds and to
state the rule in unit tests. The integration tests hold both to the same outcomes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
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


@dataclass(frozen=True)
class Contest:
    """Why an identity is contested: its holders hold `values` distinct values of `key`, more than allowed."""

    key: str
    values: int


def contested_by(identity_key: str, held: Mapping[str, Set[str]], limits: Mapping[str, int]) -> Contest | None:
    """The contest of an identity of `identity_key` whose holders (the profiles holding it, linking or not) hold
    `held` (key -> distinct non-blocked values, all holders together): the first key in name order, other than the
    identity's own, with more values than its max_per_customer in `limits`; None when it is not contested."""
    for key in sorted(limits):
        values = len(held.get(key, ()))
        if key != identity_key and values > limits[key]:
            return Contest(key, values)
    return None
