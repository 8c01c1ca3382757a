"""The reference scenarios of contact-centre identity matching, end to end on the real Neo4j."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.domain.model import (
    Assurance,
    IdentityKey,
    IgnoredReason,
    ProfileInput,
    RejectionReason,
    ResolutionStatus,
)
from app.domain.strategy import OnSuppressedValue, default_strategy
from app.errors import InvalidInput, Suppressed
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.integration.conftest import make_service

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"
ACCOUNT = "account_id"


async def count_nodes(driver: AsyncDriver) -> int:
    records, _, _ = await driver.execute_query(
        "MATCH (n) WHERE n:Profile OR n:Identity RETURN count(n) AS n", routing_="r"
    )
    return int(records[0]["n"])


async def test_crm_and_ivr_spellings_of_one_number_are_one_customer(service: IdentityService) -> None:
    crm = await service.upsert_profile(ProfileInput("salesforce", ((PHONE, "1-800-555-0199"),), source_id="C-1"))
    ivr = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+18005550199"),), source_id="call-77"))
    assert crm.customer.id == ivr.customer.id
    assert [i.value for i in ivr.customer.identities] == ["+18005550199"]
    for spelling in ["(800) 555-0199", "800.555.0199", "+1 800 555 0199"]:
        found = await service.resolve([(PHONE, spelling)])
        assert found.status is ResolutionStatus.FOUND
        assert found.customer is not None and {p.id for p in found.customer.profiles} == {
            crm.profile.id,
            ivr.profile.id,
        }


async def test_caller_on_mobile_and_emailer_on_desktop_are_one_customer(service: IdentityService) -> None:
    await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "(415) 555-2671"), (EMAIL, "John.Doe@Example.com ")), source_id="C-9")
    )
    await service.upsert_profile(ProfileInput("email", ((EMAIL, "john.doe@example.com"),), source_id="msg-3"))
    by_email = await service.resolve([(EMAIL, "JOHN.DOE@example.com")])
    by_phone = await service.resolve([(PHONE, "+1 415 555 2671")])
    assert by_email.customer is not None and by_phone.customer is not None
    assert by_email.customer.id == by_phone.customer.id
    assert len(by_email.customer.profiles) == 3
    assert by_email.assurance is Assurance.WEAK
    both = await service.resolve([(EMAIL, "john.doe@example.com"), (PHONE, "+14155552671")])
    assert both.status is ResolutionStatus.FOUND and both.assurance is Assurance.STRONG


async def test_account_id_arriving_after_authentication_strengthens_the_match(service: IdentityService) -> None:
    call = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    await service.upsert_profile(
        ProfileInput("ivr", ((ACCOUNT, "ACCT-98765"),), profile_id=call.profile.id)  # the flow's Merge action
    )
    found = await service.resolve([(ACCOUNT, " ACCT-98765 ")])
    assert found.status is ResolutionStatus.FOUND
    assert found.customer is not None and [p.id for p in found.customer.profiles] == [call.profile.id]
    assert found.assurance is Assurance.STRONG
    assert found.matched_on == (IdentityKey(ACCOUNT, "ACCT-98765"),)


async def test_unknown_or_spoofed_caller_is_not_found_and_nothing_is_written(
    service: IdentityService, driver: AsyncDriver
) -> None:
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    before = await count_nodes(driver)
    result = await service.resolve([(PHONE, "+1 212 555 0123")])
    assert result.status is ResolutionStatus.NOT_FOUND
    assert result.customer is None and result.candidates == ()
    assert await count_nodes(driver) == before


async def test_resolve_with_only_an_impossible_number_is_invalid_input(service: IdentityService) -> None:
    with pytest.raises(InvalidInput, match="INVALID_PHONE"):
        await service.resolve([(PHONE, "12")])


async def test_email_collected_in_the_flow_is_linked_to_the_existing_profile(
    service: IdentityService, driver: AsyncDriver
) -> None:
    call = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    profiles_before = await count_nodes(driver)
    linked = await service.upsert_profile(
        ProfileInput("ivr", ((EMAIL, "new.address@example.org"),), profile_id=call.profile.id)
    )
    again = await service.upsert_profile(
        ProfileInput("ivr", ((EMAIL, "New.Address@example.org"),), profile_id=call.profile.id)
    )
    assert linked.profile.id == again.profile.id == call.profile.id
    assert not linked.created and not again.created
    assert await count_nodes(driver) == profiles_before + 1  # one new identity node, no new profile
    found = await service.resolve([(EMAIL, "new.address@example.org")])
    assert found.customer is not None and [p.id for p in found.customer.profiles] == [call.profile.id]


async def test_routing_skills_follow_tier_and_recent_orders_with_a_fallback(
    service: IdentityService, clock: Clock
) -> None:
    recent = (clock.now - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    old = (clock.now - timedelta(days=30)).isoformat()
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155550001"),), source_id="p", attributes={"tier": "Platinum"})
    )
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155550002"),), source_id="r", attributes={"last_order_date": recent})
    )
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155550003"),), source_id="g", attributes={"last_order_date": old})
    )
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155550004"),), source_id="n"))

    async def skills(number: str) -> tuple[str, ...]:
        found = await service.resolve([(PHONE, number)])
        assert found.customer is not None
        return found.customer.skills

    assert await skills("+14155550001") == ("Premium_Support",)
    assert await skills("+14155550002") == ("Post_Purchase_Support",)
    assert await skills("+14155550003") == ("General_Support",)
    assert await skills("+14155550004") == ("General_Support",)  # no tier at all: the skill gap


async def test_merge_then_erase_cascades_and_an_erased_email_cannot_return(
    service: IdentityService, driver: AsyncDriver, repo: Neo4jRepository, clock: Clock
) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "gone@example.com"),), source_id="C-1"))
    b = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    other = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "stays@example.com"),), source_id="C-2"))
    merged = await service.merge_profiles(b.profile.id, a.profile.id, actor="steward", reason="same caller")
    assert {p.id for p in merged.profiles} == {a.profile.id, b.profile.id}

    receipt = await service.erase(a.profile.id, request_id="req-1", reason="GDPR Art. 17", actor="dpo")
    assert (receipt.profiles_deleted, receipt.identities_deleted, receipt.suppressed) == (2, 2, 2)
    assert await service.customer(a.profile.id) is None and await service.customer(b.profile.id) is None
    assert (await service.resolve([(EMAIL, "gone@example.com")])).status is ResolutionStatus.NOT_FOUND
    assert await service.customer(other.profile.id) is not None
    assert await count_nodes(driver) == 2  # the other customer's profile and email

    with pytest.raises(Suppressed):  # a lagging CRM sync cannot resurrect the person
        await service.upsert_profile(ProfileInput("crm", ((EMAIL, " GONE@example.com"),), source_id="C-1"))
    with pytest.raises(Suppressed):  # nor under another record id: a record carrying an erased value is refused whole
        await service.upsert_profile(
            ProfileInput("crm", ((EMAIL, "gone@example.com"), (EMAIL, "fresh@example.com")), source_id="C-3")
        )
    with pytest.raises(Suppressed):  # the erased record itself, whatever it carries now
        await service.upsert_profile(ProfileInput("crm", ((EMAIL, "fresh@example.com"),), source_id="C-1"))

    strategy = default_strategy()
    dropping = replace(
        strategy, protections=replace(strategy.protections, on_suppressed_value=OnSuppressedValue.DROP_VALUE)
    )
    partly = await make_service(repo, clock, dropping).upsert_profile(
        ProfileInput("crm", ((EMAIL, "gone@example.com"), (EMAIL, "fresh@example.com")), source_id="C-3")
    )
    assert [(r.key, r.reason) for r in partly.rejected] == [(EMAIL, RejectionReason.SUPPRESSED)]
    assert [i.value for i in partly.customer.identities] == ["fresh@example.com"]


async def test_household_phone_keeps_two_account_holders_apart_and_joins_them_with_a_conflict_when_the_rule_is_off(
    repo: Neo4jRepository, clock: Clock, driver: AsyncDriver
) -> None:
    strategy = default_strategy()
    off = replace(strategy, protections=replace(strategy.protections, contested_identities=False))
    for contested, service in ((True, make_service(repo, clock)), (False, make_service(repo, clock, off))):
        tag = "on" if contested else "off"
        await service.upsert_profile(
            ProfileInput(
                "crm",
                ((PHONE, "+14155552671"), (ACCOUNT, f"ACCT-1-{tag}"), (EMAIL, f"ann-{tag}@example.com")),
                source_id=f"A-{tag}",
            )
        )
        await service.upsert_profile(
            ProfileInput(
                "crm",
                ((PHONE, "415-555-2671"), (ACCOUNT, f"ACCT-2-{tag}"), (EMAIL, f"bob-{tag}@example.com")),
                source_id=f"B-{tag}",
            )
        )
        found = await service.resolve([(EMAIL, f"bob-{tag}@example.com")])
        assert found.customer is not None
        by_accounts = await service.resolve([(ACCOUNT, f"ACCT-1-{tag}"), (ACCOUNT, f"ACCT-2-{tag}")])
        if contested:  # the landline is contested (two account ids among its holders): two people, no conflict
            assert [p.source_id for p in found.customer.profiles] == [f"B-{tag}"] and found.customer.conflicts == ()
            assert by_accounts.status is ResolutionStatus.AMBIGUOUS
        else:  # today's behaviour without the rule: one customer, flagged, not a guess between two
            assert [(c.key, c.values) for c in found.customer.conflicts] == [
                (ACCOUNT, (f"ACCT-1-{tag}", f"ACCT-2-{tag}"))
            ]
            assert by_accounts.status is ResolutionStatus.FOUND
        await driver.execute_query("MATCH (n) WHERE n:Profile OR n:Identity DETACH DELETE n")


async def test_junk_values_never_link_profiles(service: IdentityService) -> None:
    one = await service.upsert_profile(
        ProfileInput(
            "crm", ((PHONE, "0000000000"), (EMAIL, "test@example.com"), (EMAIL, "one@example.com")), source_id="1"
        )
    )
    two = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "000-000-0000"), (EMAIL, "TEST@example.com"), (PHONE, "N/A")), source_id="2")
    )
    assert one.customer.id != two.customer.id
    assert [(r.key, r.reason) for r in two.rejected] == [(PHONE, RejectionReason.INVALID_PHONE)]
    blocked = await service.resolve([(EMAIL, "test@example.com")])
    assert blocked.status is ResolutionStatus.NOT_FOUND
    assert [i.reason for i in blocked.ignored] == [IgnoredReason.BLOCKED]
    assert all(not i.linking for i in two.customer.identities)


async def test_switchboard_number_shared_by_hundreds_is_ambiguous_not_a_guess(
    service: IdentityService, driver: AsyncDriver
) -> None:
    limit = service.strategy.protections.max_profiles_per_identity
    inputs = [
        ProfileInput("crm", ((PHONE, "+18005550100"), (EMAIL, f"person{n}@example.com")), source_id=f"S-{n}")
        for n in range(limit * 4)
    ]
    for start in range(0, len(inputs), 50):
        await service.upsert_profiles(inputs[start : start + 50])
    result = await service.resolve([(PHONE, "1 (800) 555-0100")])
    assert result.status is ResolutionStatus.AMBIGUOUS
    assert result.customer is None
    assert 1 < len(result.candidates) <= 5
    assert all(len(c.profiles) == 1 for c in result.candidates)  # the number joined nobody
    assert [i.reason for i in result.ignored] == [IgnoredReason.SATURATED]
    records, _, _ = await driver.execute_query(
        "MATCH (:Identity {value: '+18005550100'})<-[r]-() RETURN type(r) AS t, count(*) AS n", routing_="r"
    )
    assert {(r["t"], r["n"]) for r in records} == {("OBSERVED", limit * 4)}
    # A person calling from the switchboard who also gives an email is still found.
    found = await service.resolve([(PHONE, "+18005550100"), (EMAIL, "person7@example.com")])
    assert found.status is ResolutionStatus.FOUND and found.matched_on == (IdentityKey(EMAIL, "person7@example.com"),)


async def test_two_keys_landing_in_different_customers_are_ambiguous(service: IdentityService) -> None:
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155550001"),), source_id="1"))
    await service.upsert_profile(ProfileInput("crm", ((EMAIL, "other@example.com"),), source_id="2"))
    result = await service.resolve([(PHONE, "+14155550001"), (EMAIL, "other@example.com")])
    assert result.status is ResolutionStatus.AMBIGUOUS
    assert len(result.candidates) == 2 and result.customer is None
