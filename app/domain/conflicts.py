"""Customers holding more values of a key than the strategy allows (max_per_customer)."""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.model import ConflictReport, IdentityKey
from app.domain.strategy import Strategy


def find_conflicts(strategy: Strategy, identities: Iterable[IdentityKey]) -> tuple[ConflictReport, ...]:
    """One report per limited attribute over its limit, in strategy order, values sorted."""
    values: dict[str, set[str]] = {}
    for identity in identities:
        values.setdefault(identity.key, set()).add(identity.value)
    return tuple(
        ConflictReport(key=attribute.name, values=tuple(sorted(held)), limit=attribute.max_per_customer)
        for attribute in strategy.attributes
        if attribute.max_per_customer is not None
        and len(held := values.get(attribute.name, set())) > attribute.max_per_customer
    )
