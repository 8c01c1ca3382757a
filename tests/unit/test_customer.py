from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.customer import build_customer
from app.domain.model import (
    Component,
    ConflictReport,
    IdentityKey,
    IdentityLink,
    MergeEdge,
    Profile,
    Scalar,
    StoredIdentity,
)
from app.domain.strategy import default_strategy

STRATEGY = default_strategy()
T0 = datetime(2024, 3, 1, tzinfo=UTC)
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def profile(id: str, created: int, attributes: dict[str, Scalar] | None = None, updated: int | None = None) -> Profile:
    return Profile(
        id=id,
        source="crm",
        source_id=f"C-{id}",
        created_at=T0 + timedelta(days=created),
        updated_at=T0 + timedelta(days=created if updated is None else updated),
        attributes=attributes or {},
    )


def stored(key: str, value: str, *, blocked: bool = False, saturated: bool = False) -> StoredIdentity:
    return StoredIdentity(key, value, "None", "None/1", blocked=blocked, saturated=saturated, profile_count=1)


def link(profile_id: str, key: str, value: str) -> IdentityLink:
    return IdentityLink(profile_id, key, value, value, "crm", T0, T0, linking=True)


def component(*profiles: Profile, identities: tuple[StoredIdentity, ...] = (), truncated: bool = False) -> Component:
    return Component(profiles=profiles, identities=identities, links=(), merges=(), truncated=truncated)


def test_the_customer_id_is_the_oldest_profiles_id() -> None:
    customer = build_customer(STRATEGY, component(profile("p3", 5), profile("p9", 1), profile("p2", 3)), NOW)
    assert customer.id == "p9"
    assert [p.id for p in customer.profiles] == ["p9", "p2", "p3"]


def test_profiles_created_together_are_ordered_by_id() -> None:
    customer = build_customer(STRATEGY, component(profile("b", 1), profile("a", 1), profile("c", 0)), NOW)
    assert customer.id == "c"
    assert [p.id for p in customer.profiles] == ["c", "a", "b"]


def test_attributes_survive_across_profiles_and_drive_the_skills() -> None:
    customer = build_customer(
        STRATEGY,
        component(
            profile("p1", 0, {"tier": "Gold", "last_order_date": "2024-03-08T09:00:00Z"}),
            profile("p2", 1, {"tier": "Platinum"}, updated=4),
        ),
        NOW,
    )
    assert {name: value.value for name, value in customer.attributes.items()} == {
        "tier": "Platinum",
        "last_order_date": "2024-03-08T09:00:00Z",
    }
    assert customer.attributes["tier"].profile_id == "p2"
    assert customer.skills == ("Premium_Support", "Post_Purchase_Support")


def test_a_customer_no_rule_applies_to_gets_the_fallback_skill() -> None:
    assert build_customer(STRATEGY, component(profile("p1", 0)), NOW).skills == ("General_Support",)


def test_identities_are_sorted_by_key_and_value() -> None:
    identities = (stored("phone_number", "+2"), stored("account_id", "B"), stored("phone_number", "+1"))
    customer = build_customer(STRATEGY, component(profile("p1", 0), identities=identities), NOW)
    assert [s.identity for s in customer.identities] == [
        IdentityKey("account_id", "B"),
        IdentityKey("phone_number", "+1"),
        IdentityKey("phone_number", "+2"),
    ]


def test_two_linking_account_ids_are_a_conflict() -> None:
    identities = (stored("account_id", "ACCT-2"), stored("account_id", "ACCT-1"))
    customer = build_customer(STRATEGY, component(profile("p1", 0), identities=identities), NOW)
    assert customer.conflicts == (ConflictReport("account_id", ("ACCT-1", "ACCT-2"), 1),)


def test_blocked_or_saturated_identities_make_no_conflict() -> None:
    identities = (
        stored("account_id", "ACCT-1"),
        stored("account_id", "ACCT-2", blocked=True),
        stored("account_id", "ACCT-3", saturated=True),
        stored("account_id", "test@example.com"),  # blocked by the strategy, whatever the graph says
    )
    customer = build_customer(STRATEGY, component(profile("p1", 0), identities=identities), NOW)
    assert customer.conflicts == ()
    assert len(customer.identities) == 4  # still shown


def test_links_merges_and_truncation_are_carried_over() -> None:
    merge = MergeEdge("p2", "p1", T0, "steward", "same person")
    source = Component(
        profiles=(profile("p1", 0), profile("p2", 1)),
        identities=(),
        links=(link("p2", "account_id", "A"), link("p1", "account_id", "A")),
        merges=(merge,),
        truncated=True,
    )
    customer = build_customer(STRATEGY, source, NOW)
    assert [lnk.profile_id for lnk in customer.links] == ["p1", "p2"]
    assert customer.merges == (merge,)
    assert customer.truncated


def test_a_component_without_profiles_is_refused() -> None:
    with pytest.raises(ValueError):
        build_customer(STRATEGY, component(), NOW)
