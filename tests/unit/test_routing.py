from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.model import Scalar
from app.domain.routing import parse_moment, skills_for
from app.domain.strategy import Routing, RoutingRule, default_strategy

ROUTING = default_strategy().routing
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_platinum_tier_gets_premium_support() -> None:
    assert skills_for({"tier": "Platinum"}, ROUTING, NOW) == ("Premium_Support",)


def test_an_order_three_days_ago_gets_post_purchase_support() -> None:
    attributes = {"last_order_date": iso(NOW - timedelta(days=3))}
    assert skills_for(attributes, ROUTING, NOW) == ("Post_Purchase_Support",)


def test_both_rules_apply_in_rule_order() -> None:
    attributes = {"last_order_date": iso(NOW - timedelta(days=3)), "tier": "Platinum"}
    assert skills_for(attributes, ROUTING, NOW) == ("Premium_Support", "Post_Purchase_Support")


def test_a_missing_tier_falls_back_to_general_support() -> None:
    # The "skill gap": a customer without the attribute a rule reads still gets a skill.
    assert skills_for({}, ROUTING, NOW) == ("General_Support",)
    assert skills_for({"tier": None}, ROUTING, NOW) == ("General_Support",)


@pytest.mark.parametrize("garbage", ["yesterday", "2024-13-45", "", "  ", "2024-03-09T25:00"])
def test_an_unparsable_date_falls_back(garbage: str) -> None:
    assert skills_for({"last_order_date": garbage}, ROUTING, NOW) == ("General_Support",)


@pytest.mark.parametrize("value", [20240309, 1.5, True])
def test_a_date_that_is_not_a_string_never_matches(value: Scalar) -> None:
    assert skills_for({"last_order_date": value}, ROUTING, NOW) == ("General_Support",)


@pytest.mark.parametrize("tier", ["platinum", "Platinum ", "Gold"])
def test_equals_compares_strings_exactly(tier: str) -> None:
    assert skills_for({"tier": tier}, ROUTING, NOW) == ("General_Support",)


def test_equals_does_not_confuse_booleans_with_numbers() -> None:
    routing = Routing("General", (RoutingRule("Vip", "vip", equals=1), RoutingRule("Flag", "flag", equals=True)))
    assert skills_for({"vip": True, "flag": 1}, routing, NOW) == ("General",)
    assert skills_for({"vip": 1.0, "flag": True}, routing, NOW) == ("Vip", "Flag")
    assert skills_for({"vip": "1"}, routing, NOW) == ("General",)


@pytest.mark.parametrize(
    ("written", "matches"),
    [
        ("2024-03-03T12:00:00Z", True),  # exactly seven days
        ("2024-03-03T11:59:59Z", False),
        ("2024-03-03", False),  # a bare date is midnight UTC: 7.5 days before noon on the 10th
        ("2024-03-04", True),
        ("2024-03-10T12:03:00Z", True),  # a few minutes ahead: clock skew
        ("2024-03-10T13:00:00Z", False),  # an hour ahead: not a past order
        ("2024-03-11", False),
        ("2024-03-09T14:30:00", True),  # naive is UTC
        ("2024-03-09T23:30:00-05:00", True),  # 2024-03-10T04:30Z
        ("2024-03-10T14:00:00+05:00", True),  # 09:00Z, earlier today
    ],
)
def test_within_days_counts_back_from_now(written: str, matches: bool) -> None:
    expected = ("Post_Purchase_Support",) if matches else ("General_Support",)
    assert skills_for({"last_order_date": written}, ROUTING, NOW) == expected


def test_a_date_only_value_is_midnight_utc() -> None:
    assert parse_moment("2024-03-03") == datetime(2024, 3, 3, tzinfo=UTC)
    assert parse_moment("2023-10-15T14:30:00Z") == datetime(2023, 10, 15, 14, 30, tzinfo=UTC)


def test_a_skill_named_by_two_rules_is_listed_once() -> None:
    routing = Routing(
        "General",
        (
            RoutingRule("Vip", "tier", equals="Platinum"),
            RoutingRule("Recent", "last_order_date", within_days=0),
            RoutingRule("Vip", "lifetime_value", equals=10_000),
        ),
    )
    attributes: dict[str, Scalar] = {"tier": "Platinum", "lifetime_value": 10_000, "last_order_date": iso(NOW)}
    assert skills_for(attributes, routing, NOW) == ("Vip", "Recent")


def test_no_rules_means_the_fallback_skill() -> None:
    assert skills_for({"tier": "Platinum"}, Routing("General", ()), NOW) == ("General",)


def test_a_huge_window_does_not_overflow() -> None:
    routing = Routing("General", (RoutingRule("Ever", "since", within_days=10**15),))
    assert skills_for({"since": "0001-01-01"}, routing, NOW) == ("Ever",)


def test_a_naive_now_is_taken_as_utc() -> None:
    attributes = {"last_order_date": "2024-03-09T12:00:00Z"}
    assert skills_for(attributes, ROUTING, NOW.replace(tzinfo=None)) == ("Post_Purchase_Support",)


@given(st.dictionaries(st.sampled_from(["tier", "last_order_date", "other"]), st.text() | st.none() | st.integers()))
def test_arbitrary_attributes_never_raise_and_always_give_a_skill(attributes: dict[str, Scalar]) -> None:
    assert skills_for(attributes, ROUTING, NOW)
