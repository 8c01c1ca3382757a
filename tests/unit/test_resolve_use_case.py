"""Resolve and the customer reads on the in-memory repository: statuses, matched keys, assurance, ignored values,
conflicts, survivorship and routing, without Neo4j."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta

import pytest

from app.domain.model import (
    Assurance,
    IdentityKey,
    IgnoredReason,
    ProfileInput,
    RejectionReason,
    ResolutionStatus,
)
from app.domain.strategy import default_strategy
from app.errors import InvalidInput, NotFound
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.unit.fake_repository import InMemoryRepository
from tests.unit.use_case_support import ACCOUNT, EMAIL, PHONE, make_service


def limited(max_profiles_per_identity: int) -> IdentityService:
    strategy = default_strategy()
    protections = replace(strategy.protections, max_profiles_per_identity=max_profiles_per_identity)
    return make_service(InMemoryRepository(), Clock(), replace(strategy, protections=protections))


async def test_a_known_number_in_another_spelling_finds_its_customer_with_weak_assurance(
    service: IdentityService,
) -> None:
    crm = await service.upsert_profile(ProfileInput("crm", ((PHONE, "1-800-555-0199"),), source_id="C-1"))
    ivr = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+18005550199"),), source_id="call-77"))
    found = await service.resolve([(PHONE, "(800) 555-0199")])
    assert found.status is ResolutionStatus.FOUND
    assert found.customer is not None and {p.id for p in found.customer.profiles} == {crm.profile.id, ivr.profile.id}
    assert found.matched_on == (IdentityKey(PHONE, "+18005550199"),)
    assert found.assurance is Assurance.WEAK
    assert found.customer.id == crm.profile.id  # the oldest profile names the customer


async def test_two_different_keys_agreeing_give_strong_assurance(service: IdentityService) -> None:
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "John.Doe@Example.com")), source_id="C-9")
    )
    found = await service.resolve([(EMAIL, "john.doe@example.com"), (PHONE, "415 555 2671")])
    assert found.status is ResolutionStatus.FOUND
    assert found.matched_on == (IdentityKey(EMAIL, "john.doe@example.com"), IdentityKey(PHONE, "+14155552671"))
    assert found.assurance is Assurance.STRONG


async def test_a_secondary_key_alone_gives_strong_assurance(service: IdentityService) -> None:
    await service.upsert_profile(ProfileInput("billing", ((ACCOUNT, "ACCT-98765"),), source_id="B-1"))
    found = await service.resolve([(ACCOUNT, " ACCT-98765 ")])
    assert found.status is ResolutionStatus.FOUND
    assert found.matched_on == (IdentityKey(ACCOUNT, "ACCT-98765"),)
    assert found.assurance is Assurance.STRONG


async def test_an_unknown_caller_is_not_found_and_nothing_is_written(
    service: IdentityService, repo: InMemoryRepository
) -> None:
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    before = copy.deepcopy(repo.graph)
    result = await service.resolve([(PHONE, "+1 212 555 0123")])
    assert result.status is ResolutionStatus.NOT_FOUND
    assert (result.customer, result.candidates, result.matched_on) == (None, (), ())
    assert result.assurance is Assurance.NONE
    assert repo.graph == before


async def test_two_keys_landing_in_two_customers_are_ambiguous_with_both_as_candidates(
    service: IdentityService,
) -> None:
    one = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155550001"),), source_id="1"))
    two = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "other@example.com"),), source_id="2"))
    result = await service.resolve([(PHONE, "+14155550001"), (EMAIL, "other@example.com")])
    assert result.status is ResolutionStatus.AMBIGUOUS and result.customer is None
    assert sorted(c.id for c in result.candidates) == sorted([one.profile.id, two.profile.id])
    assert result.matched_on == (IdentityKey(EMAIL, "other@example.com"), IdentityKey(PHONE, "+14155550001"))
    assert result.assurance is Assurance.NONE


async def test_a_saturated_number_is_ambiguous_with_a_few_single_profile_candidates() -> None:
    service = limited(3)
    for n in range(7):
        await service.upsert_profile(
            ProfileInput("crm", ((PHONE, "+18005550100"), (EMAIL, f"person{n}@example.com")), source_id=f"S-{n}")
        )
    result = await service.resolve([(PHONE, "1 (800) 555-0100")])
    assert result.status is ResolutionStatus.AMBIGUOUS and result.customer is None
    assert len(result.candidates) == 5  # the service's max_candidates, not all seven holders
    assert all(len(c.profiles) == 1 for c in result.candidates)  # the number joins nobody
    assert result.matched_on == (IdentityKey(PHONE, "+18005550100"),)
    assert [(i.value, i.reason) for i in result.ignored] == [("+18005550100", IgnoredReason.SATURATED)]


async def test_a_caller_from_a_saturated_number_who_gives_an_email_is_found_by_the_email() -> None:
    service = limited(3)
    for n in range(5):
        await service.upsert_profile(
            ProfileInput("crm", ((PHONE, "+18005550100"), (EMAIL, f"person{n}@example.com")), source_id=f"S-{n}")
        )
    found = await service.resolve([(PHONE, "+18005550100"), (EMAIL, "person3@example.com")])
    assert found.status is ResolutionStatus.FOUND
    assert found.matched_on == (IdentityKey(EMAIL, "person3@example.com"),)
    assert found.customer is not None and [p.source_id for p in found.customer.profiles] == ["S-3"]


async def test_blocked_values_are_ignored_and_link_no_one(service: IdentityService) -> None:
    one = await service.upsert_profile(
        ProfileInput("crm", ((EMAIL, "test@example.com"), (EMAIL, "one@example.com")), source_id="1")
    )
    two = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "TEST@example.com"),), source_id="2"))
    assert one.customer.id != two.customer.id
    assert [link.linking for link in two.customer.links] == [False]
    blocked = await service.resolve([(EMAIL, "test@example.com")])
    assert blocked.status is ResolutionStatus.NOT_FOUND
    assert [(i.value, i.reason) for i in blocked.ignored] == [("test@example.com", IgnoredReason.BLOCKED)]
    beside = await service.resolve([(EMAIL, "test@example.com"), (EMAIL, "one@example.com")])
    assert beside.status is ResolutionStatus.FOUND
    assert beside.matched_on == (IdentityKey(EMAIL, "one@example.com"),)


async def test_a_value_blocked_after_it_was_stored_stops_finding_anyone(repo: InMemoryRepository, clock: Clock) -> None:
    strategy = default_strategy()
    unblocked = replace(strategy, protections=replace(strategy.protections, blocked_values=frozenset()))
    await make_service(repo, clock, unblocked).upsert_profile(
        ProfileInput("crm", ((EMAIL, "test@example.com"),), source_id="1")
    )
    result = await make_service(repo, clock).resolve([(EMAIL, "test@example.com")])
    assert result.status is ResolutionStatus.NOT_FOUND
    assert [i.reason for i in result.ignored] == [IgnoredReason.BLOCKED]


async def test_a_resolve_with_only_unusable_values_is_invalid_input(service: IdentityService) -> None:
    with pytest.raises(InvalidInput, match="INVALID_PHONE"):
        await service.resolve([(PHONE, "12")])


async def test_unusable_search_values_are_listed_beside_a_match(service: IdentityService) -> None:
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    found = await service.resolve([(PHONE, "+14155552671"), (EMAIL, "not-an-email"), ("fax", "123")])
    assert found.status is ResolutionStatus.FOUND
    assert sorted((r.key, r.reason) for r in found.rejected) == [
        (EMAIL, RejectionReason.INVALID_EMAIL),
        ("fax", RejectionReason.UNKNOWN_KEY),
    ]


async def test_with_the_contested_rule_off_a_household_phone_joining_two_account_ids_reports_a_conflict(
    repo: InMemoryRepository, clock: Clock
) -> None:
    strategy = default_strategy()
    off = replace(strategy, protections=replace(strategy.protections, contested_identities=False))
    service = make_service(repo, clock, off)
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (ACCOUNT, "ACCT-1"), (EMAIL, "ann@example.com")), source_id="A")
    )
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "415-555-2671"), (ACCOUNT, "ACCT-2"), (EMAIL, "bob@example.com")), source_id="B")
    )
    found = await service.resolve([(EMAIL, "bob@example.com")])
    assert found.customer is not None
    assert [(c.key, c.values, c.limit) for c in found.customer.conflicts] == [(ACCOUNT, ("ACCT-1", "ACCT-2"), 1)]
    by_accounts = await service.resolve([(ACCOUNT, "ACCT-1"), (ACCOUNT, "ACCT-2")])
    assert by_accounts.status is ResolutionStatus.FOUND  # one customer, flagged, not a guess between two


async def test_the_newest_attribute_value_survives_with_its_provenance(service: IdentityService) -> None:
    old = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1", attributes={"tier": "Gold", "lang": "en"})
    )
    new = await service.upsert_profile(
        ProfileInput("billing", ((PHONE, "+14155552671"),), source_id="B-1", attributes={"tier": "Platinum"})
    )
    tier = new.customer.attributes["tier"]
    assert (tier.value, tier.profile_id, tier.source) == ("Platinum", new.profile.id, "billing")
    assert tier.updated_at == new.profile.updated_at
    assert new.customer.attributes["lang"].profile_id == old.profile.id  # only the crm record has it

    again = await service.upsert_profile(ProfileInput("crm", (), source_id="C-1", attributes={"tier": "Silver"}))
    assert (again.customer.attributes["tier"].value, again.customer.attributes["tier"].source) == ("Silver", "crm")
    removed = await service.upsert_profile(ProfileInput("crm", (), source_id="C-1", attributes={"tier": None}))
    assert removed.profile.attributes == {"lang": "en"}
    assert removed.customer.attributes["tier"].value == "Platinum"  # a removed value lets the older one show


async def test_skills_follow_the_routing_rules_with_a_fallback(service: IdentityService, clock: Clock) -> None:
    recent = (clock.now - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    old = (clock.now - timedelta(days=30)).isoformat()
    cases = {
        "+14155550001": ({"tier": "Platinum"}, ("Premium_Support",)),
        "+14155550002": ({"last_order_date": recent}, ("Post_Purchase_Support",)),
        "+14155550003": ({"last_order_date": old}, ("General_Support",)),
        "+14155550004": ({}, ("General_Support",)),
        "+14155550005": ({"tier": "Platinum", "last_order_date": recent}, ("Premium_Support", "Post_Purchase_Support")),
    }
    for number, (attributes, _) in cases.items():
        await service.upsert_profile(ProfileInput("crm", ((PHONE, number),), source_id=number, attributes=attributes))
    for number, (_, skills) in cases.items():
        found = await service.resolve([(PHONE, number)])
        assert found.customer is not None and found.customer.skills == skills


async def test_profiles_of_one_customer_read_back_as_one_customer(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="A"))
    b = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="B"))
    first, second, missing = await service.customers([a.profile.id, b.profile.id, "no-such-profile"])
    assert first is not None and first == second and missing is None
    profile = await service.profile(b.profile.id)
    assert profile is not None and profile.identities == (IdentityKey(PHONE, "+14155552671"),)


async def test_a_read_given_a_token_from_a_write_sees_it_and_a_made_up_token_is_refused(
    service: IdentityService,
) -> None:
    stored = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="A"))
    customer = await service.customer(stored.profile.id, consistency=stored.consistency_token)
    assert customer is not None and customer.id == stored.profile.id
    with pytest.raises(InvalidInput, match="consistencyToken"):
        await service.resolve([(PHONE, "+14155552671")], consistency="made-up")


async def test_explain_gives_the_chain_of_shared_identities_and_merges(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="A"))
    b = await service.upsert_profile(
        ProfileInput("ivr", ((PHONE, "415.555.2671"), (EMAIL, "b@example.com")), source_id="B")
    )
    c = await service.upsert_profile(ProfileInput("web", ((EMAIL, "c@example.com"),), source_id="C"))
    await service.merge_profiles(c.profile.id, b.profile.id, actor="steward", reason="same person")
    explanation = await service.explain(a.profile.id, c.profile.id)
    assert explanation.connected
    assert [(s.from_profile_id, s.to_profile_id, s.via) for s in explanation.steps] == [
        (a.profile.id, b.profile.id, "IDENTITY"),
        (b.profile.id, c.profile.id, "MERGE"),
    ]
    step = explanation.steps[0]
    assert step.identity == IdentityKey(PHONE, "+14155552671")
    assert step.to_link is not None and step.to_link.raw == "415.555.2671"
    apart = await service.upsert_profile(ProfileInput("web", ((EMAIL, "d@example.com"),), source_id="D"))
    assert not (await service.explain(a.profile.id, apart.profile.id)).connected
    with pytest.raises(NotFound):
        await service.explain(a.profile.id, "no-such-profile")


async def _household(service: IdentityService) -> tuple[str, str]:
    """Two account holders sharing a landline: two profiles, one account id each."""
    ann = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155550100"), (ACCOUNT, "ACCT-1")), source_id="ann")
    )
    bob = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155550100"), (ACCOUNT, "ACCT-2")), source_id="bob")
    )
    return ann.profile.id, bob.profile.id


async def test_a_landline_of_two_account_holders_is_contested_and_ambiguous(service: IdentityService) -> None:
    ann, bob = await _household(service)
    result = await service.resolve([(PHONE, "+14155550100")])
    assert result.status is ResolutionStatus.AMBIGUOUS and result.customer is None
    assert sorted(c.id for c in result.candidates) == sorted([ann, bob])
    assert [(i.value, i.reason) for i in result.ignored] == [("+14155550100", IgnoredReason.CONTESTED)]
    assert result.assurance is Assurance.NONE


async def test_the_contested_landline_with_an_account_id_finds_the_account_holder(service: IdentityService) -> None:
    _, bob = await _household(service)
    result = await service.resolve([(PHONE, "+14155550100"), (ACCOUNT, "ACCT-2")])
    assert result.status is ResolutionStatus.FOUND and result.customer is not None
    assert [p.id for p in result.customer.profiles] == [bob]
    assert result.matched_on == (IdentityKey(ACCOUNT, "ACCT-2"),)
    assert result.assurance is Assurance.STRONG


async def test_with_the_rule_off_the_landline_joins_the_household(repo: InMemoryRepository, clock: Clock) -> None:
    strategy = default_strategy()
    off = replace(strategy, protections=replace(strategy.protections, contested_identities=False))
    service = make_service(repo, clock, off)
    ann, bob = await _household(service)
    result = await service.resolve([(PHONE, "+14155550100")])
    assert result.status is ResolutionStatus.FOUND and result.customer is not None
    assert sorted(p.id for p in result.customer.profiles) == sorted([ann, bob])
