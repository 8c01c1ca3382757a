"""A connected component of profiles, read from the graph, turned into a customer by the strategy's rules."""

from __future__ import annotations

from datetime import datetime

from app.domain.conflicts import find_conflicts
from app.domain.model import Component, Customer
from app.domain.routing import skills_for
from app.domain.strategy import Strategy
from app.domain.survivorship import survive


def build_customer(strategy: Strategy, component: Component, now: datetime) -> Customer:
    """The customer of `component`: id of its oldest profile, surviving attributes, skills, conflicts.

    Conflicts count linking identities only: a blocked or saturated value (flagged in the graph, or
    blocked by the current strategy) joins no one, so it cannot make two accounts one customer's.
    Raises ValueError for a component without profiles.
    """
    if not component.profiles:
        raise ValueError("a customer needs at least one profile")
    profiles = tuple(sorted(component.profiles, key=lambda profile: (profile.created_at, profile.id)))
    attributes = survive(profiles)
    linking = (
        stored.identity
        for stored in component.identities
        if stored.linking and not strategy.is_blocked(stored.identity)
    )
    return Customer(
        id=profiles[0].id,
        profiles=profiles,
        identities=tuple(sorted(component.identities, key=lambda stored: (stored.key, stored.value))),
        links=tuple(sorted(component.links, key=lambda link: (link.profile_id, link.key, link.value))),
        merges=tuple(sorted(component.merges, key=lambda merge: (merge.at, merge.source_profile_id))),
        attributes=attributes,
        skills=skills_for({name: chosen.value for name, chosen in attributes.items()}, strategy.routing, now),
        conflicts=find_conflicts(strategy, linking),
        truncated=component.truncated,
    )
