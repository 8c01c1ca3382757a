"""The contested rule in a write transaction: re-evaluates the identities whose holders or holders' values the
transaction changed (cypher/contest_identities.cypher), under their locks, before it commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from neo4j import AsyncTransaction

from app.db.statements import fetch, key_params
from app.domain.model import IdentityKey


@dataclass(frozen=True)
class ContestChange:
    """What one re-evaluation changed: identities contested now and those released, each with its holders' profile
    ids (for the change log; never the values)."""

    contested: dict[IdentityKey, tuple[str, ...]] = field(default_factory=dict)
    released: dict[IdentityKey, tuple[str, ...]] = field(default_factory=dict)  # linking again
    # Released over the fan-out limit: saturated instead, still not linking.
    saturated: dict[IdentityKey, tuple[str, ...]] = field(default_factory=dict)

    @property
    def holder_ids(self) -> list[str]:
        """The holders of the identities contested now, sorted: the profiles whose links this write cut."""
        return sorted({pid for holders in self.contested.values() for pid in holders})


async def contest(
    tx: AsyncTransaction,
    *,
    profile_ids: Sequence[str] = (),
    identities: Sequence[IdentityKey] = (),
    holders_of: Sequence[IdentityKey] = (),
    limits: Mapping[str, int] | None,
    fanout: int,
    now: datetime,
) -> ContestChange:
    """Re-evaluate every identity the given profiles hold, the given identities (those that lost a holder), and
    every identity the holders of `holders_of` hold (values newly blocked, which no longer count). With the rule
    off (`limits` empty or None) only those still contested from when it was on are looked at, and released.
    Nothing to do (no statement) when nothing is named."""
    if not (profile_ids or identities or holders_of):
        return ContestChange()
    rows = await fetch(
        tx,
        "contest_identities",
        profile_ids=sorted(set(profile_ids)),
        identities=key_params(sorted(set(identities))),
        holders_of=key_params(sorted(set(holders_of))),
        limits=[{"key": k, "max": m} for k, m in sorted((limits or {}).items())],
        contested_only=not limits,
        fanout=fanout,
        now=now,
    )
    row = rows[0]
    return ContestChange(
        {IdentityKey(r["key"], r["value"]): tuple(sorted(r["holders"])) for r in row["contested"]},
        {IdentityKey(r["key"], r["value"]): tuple(sorted(r["holders"])) for r in row["released"] if not r["saturated"]},
        {IdentityKey(r["key"], r["value"]): tuple(sorted(r["holders"])) for r in row["released"] if r["saturated"]},
    )
