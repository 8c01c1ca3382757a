"""Which value of each attribute a customer shows when its profiles disagree: the most recently set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.domain.model import AttributeValue, Profile


def survive(profiles: Sequence[Profile]) -> dict[str, AttributeValue]:
    """Per attribute, the value set most recently across `profiles`, with where it came from.

    A value's time is `profile.attribute_times[name]`, else the profile's `updated_at`. Ties go to the
    profile updated later, then to the smaller profile id, so the result never depends on input order.
    An explicit None means the profile holds no value: it is skipped, and an older real value survives.
    """
    winners: dict[str, tuple[datetime, datetime, Profile]] = {}
    for profile in profiles:
        for name, value in profile.attributes.items():
            if value is None:
                continue
            set_at = profile.attribute_times.get(name, profile.updated_at)
            current = winners.get(name)
            if current is None or _beats((set_at, profile.updated_at, profile.id), current):
                winners[name] = (set_at, profile.updated_at, profile)
    return {
        name: AttributeValue(
            name=name,
            value=profile.attributes[name],
            profile_id=profile.id,
            source=profile.source,
            updated_at=set_at,
        )
        for name, (set_at, _, profile) in sorted(winners.items())
    }


def _beats(candidate: tuple[datetime, datetime, str], current: tuple[datetime, datetime, Profile]) -> bool:
    set_at, updated_at, profile_id = candidate
    if (set_at, updated_at) != current[:2]:
        return (set_at, updated_at) > current[:2]
    return profile_id < current[2].id
