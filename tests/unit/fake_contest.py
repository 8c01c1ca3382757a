"""The contested rule on the in-memory repository's graph (tests/unit/fake_repository.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from app.domain.fanout import contested_by
from app.domain.model import IdentityKey

if TYPE_CHECKING:
    from tests.unit.fake_graph import Graph as FakeGraph


def apply_contest(g: FakeGraph, limits: Mapping[str, int] | None, fanout: int) -> None:
    """The contested rule of contest_identities.cypher over the whole graph (blocked and saturated identities left
    as they are; one released over the fan-out limit is saturated instead; with no limits, all are released)."""
    limits = limits or {}  # the rule off: what is still contested is released
    holders: dict[IdentityKey, set[str]] = {}
    values: dict[str, dict[str, set[str]]] = {}  # profile id -> key -> its non-blocked values
    for pid, key in g.edges:
        holders.setdefault(key, set()).add(pid)
        if key in g.identities and not g.identities[key].blocked:
            values.setdefault(pid, {}).setdefault(key.key, set()).add(key.value)
    for key, ident in sorted(g.identities.items()):
        if ident.blocked or ident.saturated:
            continue
        held: dict[str, set[str]] = {}
        for pid in holders.get(key, ()):
            for k, vs in values.get(pid, {}).items():
                held.setdefault(k, set()).update(vs)
        found = contested_by(key.key, held, limits)
        if found is not None:
            ident = replace(ident, contested_key=found.key, contested_values=found.values)
        elif ident.contested:
            over = fanout > 0 and len(holders.get(key, ())) > fanout
            ident = replace(ident, contested_key=None, contested_values=0, saturated=over)
        g.identities[key] = ident
        for pid in holders.get(key, ()):
            g.edges[(pid, key)] = replace(g.edges[(pid, key)], linking=ident.linking)
