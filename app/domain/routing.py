"""Routing skills from a customer's attributes: the strategy's rules, or its fallback skill."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from app.domain.model import Scalar
from app.domain.strategy import Routing, RoutingRule

# Sources' clocks disagree by a little: a timestamp this far in the future still counts as "now".
# Anything later is a scheduled or mistyped date and does not make a recent purchase.
CLOCK_SKEW = timedelta(minutes=5)


def skills_for(attributes: Mapping[str, Scalar], routing: Routing, now: datetime) -> tuple[str, ...]:
    """Skills of every rule that holds, in rule order, each once; the fallback skill when none holds."""
    now = _as_utc(now)
    skills: dict[str, None] = {}  # insertion-ordered set
    for rule in routing.rules:
        if _holds(rule, attributes.get(rule.attribute), now):
            skills.setdefault(rule.skill, None)
    return tuple(skills) or (routing.fallback_skill,)


def _holds(rule: RoutingRule, value: Scalar, now: datetime) -> bool:
    if value is None:
        return False
    if rule.equals is not None:
        return scalars_equal(value, rule.equals)
    if rule.within_days is None:
        return False
    moment = parse_moment(value)
    if moment is None:
        return False
    age = (now - moment).total_seconds()
    # In seconds, as floats: timedelta(days=within_days) overflows for absurd but legal limits.
    return -CLOCK_SKEW.total_seconds() <= age <= rule.within_days * 86400.0


def scalars_equal(value: Scalar, expected: Scalar) -> bool:
    """Type-aware equality: strings exactly (case and spaces count), numbers numerically, booleans only
    against booleans (Python's True == 1 would make `equals = 1` match a `true` flag)."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if isinstance(value, str) or isinstance(expected, str):
        return isinstance(value, str) and isinstance(expected, str) and value == expected
    return value == expected


def parse_moment(value: Scalar) -> datetime | None:
    """An ISO-8601 date or datetime string as an aware UTC datetime; None for anything else.

    Accepts a trailing Z; a naive datetime is taken as UTC and a bare date as midnight UTC.
    """
    if not isinstance(value, str):
        return None
    try:
        # astimezone overflows for year-1 or year-9999 values with an offset
        return _as_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        return None


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
