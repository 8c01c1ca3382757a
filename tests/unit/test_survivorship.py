from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from app.domain.model import AttributeValue, Profile, Scalar
from app.domain.survivorship import survive

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def profile(
    id: str,
    updated: int,
    attributes: dict[str, Scalar],
    times: dict[str, int] | None = None,
    source: str = "crm",
) -> Profile:
    return Profile(
        id=id,
        source=source,
        source_id=None,
        created_at=T0,
        updated_at=T0 + timedelta(days=updated),
        attributes=attributes,
        attribute_times={name: T0 + timedelta(days=day) for name, day in (times or {}).items()},
    )


def test_the_most_recently_set_value_wins_with_its_provenance() -> None:
    old = profile("p1", 1, {"tier": "Gold"}, source="crm")
    new = profile("p2", 5, {"tier": "Platinum"}, source="ivr")
    assert survive([old, new]) == {
        "tier": AttributeValue("tier", "Platinum", profile_id="p2", source="ivr", updated_at=T0 + timedelta(days=5)),
    }


def test_attribute_times_beat_the_profile_update_time() -> None:
    # p2 was touched later, but its tier was set long ago.
    p1 = profile("p1", 3, {"tier": "Gold"}, times={"tier": 3})
    p2 = profile("p2", 9, {"tier": "Silver", "city": "Lyon"}, times={"tier": 1})
    winners = survive([p1, p2])
    assert (winners["tier"].value, winners["tier"].updated_at) == ("Gold", T0 + timedelta(days=3))
    assert (winners["city"].value, winners["city"].profile_id) == ("Lyon", "p2")


def test_equal_set_times_go_to_the_later_updated_profile_then_the_smaller_id() -> None:
    a = profile("a", 2, {"tier": "A"}, times={"tier": 1})
    b = profile("b", 4, {"tier": "B"}, times={"tier": 1})
    c = profile("c", 4, {"tier": "C"}, times={"tier": 1})
    assert survive([a, b, c])["tier"].value == "B"


def test_the_result_does_not_depend_on_profile_order() -> None:
    profiles = [
        profile("a", 2, {"tier": "A", "lang": "fr"}, times={"tier": 1}),
        profile("b", 2, {"tier": "B", "lang": "en"}),
        profile("c", 1, {"tier": "C", "vip": True}, times={"tier": 2}),
    ]
    results = [survive(order) for order in itertools.permutations(profiles)]
    assert all(result == results[0] for result in results)


def test_an_explicit_none_does_not_hide_an_older_value() -> None:
    old = profile("p1", 1, {"tier": "Gold"})
    new = profile("p2", 5, {"tier": None})
    assert survive([old, new])["tier"].value == "Gold"
    assert survive([new]) == {}


def test_no_profiles_means_no_attributes() -> None:
    assert survive([]) == {}
