"""The engine's operations on the real Neo4j: idempotency, merge/unmerge, unlink, explain, erasure, export."""

from __future__ import annotations

import pytest

from app.db.driver import AsyncDriver
from app.domain.model import ErasurePlan, IdentityKey, ProfileInput, ResolutionStatus
from app.errors import Conflict, InvalidInput, NotFound, Suppressed
from app.services.identity import IdentityService

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"
ACCOUNT = "account_id"


async def test_upsert_is_idempotent_on_source_and_source_id(service: IdentityService) -> None:
    item = ProfileInput(
        "crm", ((PHONE, "+14155552671"), (EMAIL, "a@example.com")), source_id="C-1", attributes={"tier": "Gold"}
    )
    first = await service.upsert_profile(item)
    second = await service.upsert_profile(item)
    assert first.created and not second.created
    assert first.profile.id == second.profile.id
    assert len(second.customer.profiles) == 1 and len(second.customer.links) == 2
    assert second.profile.attributes == {"tier": "Gold"}


async def test_a_batch_naming_one_profile_twice_gives_it_one_edge_per_identity(service: IdentityService) -> None:
    first = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="C-1"))
    results = await service.upsert_profiles(
        [
            ProfileInput("crm", ((PHONE, "(415) 555-2671"),), source_id="C-1"),
            ProfileInput("api", ((PHONE, "+14155552671"),), profile_id=first.profile.id),
        ]
    )
    assert {r.profile.id for r in results} == {first.profile.id}
    links = [link for link in results[-1].customer.links if link.key == PHONE]
    assert [link.value for link in links] == ["+14155552671"]
    assert links[0].raw in ("(415) 555-2671", "+14155552671")  # one of the batch's spellings


async def test_a_missing_profile_id_in_a_batch_stores_the_other_rows(service: IdentityService) -> None:
    outcomes = await service.ingest_batch(
        [
            ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"),
            ProfileInput("api", ((EMAIL, "ghost@example.com"),), profile_id="no-such-profile"),
            ProfileInput("ivr", ((PHONE, "415.555.2671"), (EMAIL, "b@example.com")), source_id="I-1"),
        ]
    )
    assert [o.error is None for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, NotFound)
    found = await service.resolve([(EMAIL, "b@example.com")])
    assert found.customer is not None and len(found.customer.profiles) == 2
    assert (await service.resolve([(EMAIL, "ghost@example.com")])).status is ResolutionStatus.NOT_FOUND


async def test_attributes_merge_per_key_and_null_removes_one(service: IdentityService) -> None:
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1", attributes={"tier": "Gold", "lang": "en"})
    )
    result = await service.upsert_profile(
        ProfileInput("crm", (), source_id="C-1", attributes={"tier": "Platinum", "lang": None})
    )
    assert result.profile.attributes == {"tier": "Platinum"}
    assert result.customer.attributes["tier"].value == "Platinum"
    assert result.customer.skills == ("Premium_Support",)


async def test_newest_attribute_value_wins_across_profiles_with_provenance(service: IdentityService) -> None:
    old = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1", attributes={"tier": "Gold"})
    )
    new = await service.upsert_profile(
        ProfileInput("billing", ((PHONE, "+14155552671"),), source_id="B-1", attributes={"tier": "Platinum"})
    )
    tier = new.customer.attributes["tier"]
    assert (tier.value, tier.profile_id, tier.source) == ("Platinum", new.profile.id, "billing")
    assert new.customer.id == old.profile.id  # the oldest profile names the customer


async def test_adding_to_an_unknown_profile_is_not_found(service: IdentityService) -> None:
    with pytest.raises(NotFound):
        await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), profile_id="no-such-profile"))


async def test_an_input_naming_only_a_profile_id_is_refused_and_changes_nothing(
    service: IdentityService, driver: AsyncDriver
) -> None:
    stored = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="C-1"))
    before, _, _ = await driver.execute_query("MATCH (p:Profile) RETURN p.updated_at AS at, p.version AS version")
    with pytest.raises(InvalidInput, match="nothing to store"):
        await service.upsert_profile(ProfileInput("api", (), profile_id=stored.profile.id))
    after, _, _ = await driver.execute_query("MATCH (p:Profile) RETURN p.updated_at AS at, p.version AS version")
    assert [r.data() for r in after] == [r.data() for r in before]


async def test_upsert_with_nothing_usable_is_refused(service: IdentityService) -> None:
    with pytest.raises(InvalidInput, match="INVALID_EMAIL"):
        await service.upsert_profile(ProfileInput("crm", ((EMAIL, "not-an-email"),), source_id="C-1"))
    with pytest.raises(InvalidInput):
        await service.upsert_profile(ProfileInput("bad source!", ((EMAIL, "a@example.com"),)))


async def test_merge_is_idempotent_and_unmerge_splits_again(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    b = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="B"))
    once = await service.merge_profiles(b.profile.id, a.profile.id, actor="steward", reason="called about order")
    twice = await service.merge_profiles(b.profile.id, a.profile.id, actor="steward")
    assert once.id == twice.id == a.profile.id
    assert len(twice.merges) == 1 and twice.merges[0].by == "steward"
    split = await service.unmerge_profiles(b.profile.id, a.profile.id, actor="steward")
    assert sorted(len(c.profiles) for c in split) == [1, 1]
    with pytest.raises(NotFound):
        await service.unmerge_profiles(b.profile.id, a.profile.id, actor="steward")


async def test_merge_refuses_self_unknown_and_conflicting_profiles(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-1"),), source_id="A"))
    b = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="B"))
    with pytest.raises(InvalidInput):
        await service.merge_profiles(a.profile.id, a.profile.id, actor="x")
    with pytest.raises(NotFound):
        await service.merge_profiles(a.profile.id, "missing", actor="x")
    with pytest.raises(Conflict, match="account_id"):
        await service.merge_profiles(a.profile.id, b.profile.id, actor="x")
    forced = await service.merge_profiles(a.profile.id, b.profile.id, actor="x", force=True)
    assert [c.key for c in forced.conflicts] == [ACCOUNT]


async def test_unlinking_the_only_shared_identity_splits_the_customer(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "a@x.com")), source_id="A"))
    b = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="B"))
    assert len(b.customer.profiles) == 2
    after = await service.unlink_identity(b.profile.id, PHONE, "(415) 555-2671", actor="steward")
    assert after is not None and [p.id for p in after.profiles] == [b.profile.id]
    found = await service.resolve([(PHONE, "+14155552671")])
    assert found.customer is not None and [p.id for p in found.customer.profiles] == [a.profile.id]
    with pytest.raises(NotFound):
        await service.unlink_identity(b.profile.id, PHONE, "+14155552671", actor="steward")


async def test_explain_gives_the_chain_of_identities_and_merges(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    b = await service.upsert_profile(
        ProfileInput("webchat", ((EMAIL, "A@example.com"), (PHONE, "+14155552671")), source_id="B")
    )
    c = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "415 555 2671"),), source_id="C"))
    d = await service.upsert_profile(ProfileInput("email", ((EMAIL, "d@example.com"),), source_id="D"))
    await service.merge_profiles(d.profile.id, c.profile.id, actor="steward", reason="confirmed by phone")
    explanation = await service.explain(a.profile.id, d.profile.id)
    assert explanation.connected
    hops = [(s.from_profile_id, s.via, s.identity, s.to_profile_id) for s in explanation.steps]
    assert hops == [
        (a.profile.id, "IDENTITY", IdentityKey(EMAIL, "a@example.com"), b.profile.id),
        (b.profile.id, "IDENTITY", IdentityKey(PHONE, "+14155552671"), c.profile.id),
        (c.profile.id, "MERGE", None, d.profile.id),
    ]
    assert explanation.steps[0].to_link is not None and explanation.steps[0].to_link.raw == "A@example.com"
    assert explanation.steps[2].merge is not None and explanation.steps[2].merge.reason == "confirmed by phone"
    lone = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "lone@example.com"),), source_id="L"))
    assert not (await service.explain(a.profile.id, lone.profile.id)).connected
    with pytest.raises(NotFound):
        await service.explain(a.profile.id, "missing")


async def test_erasure_dry_run_lists_what_would_go_and_changes_nothing(service: IdentityService) -> None:
    a = await service.upsert_profile(
        ProfileInput("crm", ((EMAIL, "a@example.com"), (PHONE, "+18005550100")), source_id="A")
    )
    # Fill the switchboard past the fan-out limit: it stays when the customer goes.
    limit = service.strategy.protections.max_profiles_per_identity
    await service.upsert_profiles(
        [ProfileInput("crm", ((PHONE, "+18005550100"),), source_id=f"S{n}") for n in range(limit + 1)]
    )
    plan = await service.erasure_plan(a.profile.id)
    assert isinstance(plan, ErasurePlan)
    assert plan.profile_ids == (a.profile.id,)
    assert plan.identities == (IdentityKey(EMAIL, "a@example.com"),)
    assert plan.kept_identities == (IdentityKey(PHONE, "+18005550100"),)
    assert await service.customer(a.profile.id) is not None
    receipt = await service.erase(a.profile.id, request_id="r-1", reason="opt-out", actor="dpo")
    assert (receipt.profiles_deleted, receipt.identities_deleted, receipt.suppressed) == (1, 1, 1)
    again = await service.erase(a.profile.id, request_id="r-1", reason="opt-out", actor="dpo")
    assert again == receipt  # idempotent on the request id, even though the profile is gone
    stored = await service.erasure_receipt("r-1")
    assert stored == receipt and "a@example.com" not in repr(stored)
    switchboard = await service.resolve([(PHONE, "+18005550100")])
    assert switchboard.status is ResolutionStatus.AMBIGUOUS


async def test_erasing_one_profile_keeps_the_rest_of_the_customer(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    b = await service.upsert_profile(
        ProfileInput("ivr", ((EMAIL, "a@example.com"), (PHONE, "+14155552671")), source_id="B")
    )
    receipt = await service.erase(
        b.profile.id, request_id="r-2", reason="wrong link", actor="dpo", whole_customer=False
    )
    assert (receipt.profiles_deleted, receipt.identities_deleted) == (1, 1)
    remaining = await service.customer(a.profile.id)
    assert remaining is not None and [i.value for i in remaining.identities] == ["a@example.com"]


async def test_erasing_an_unknown_profile_is_not_found(service: IdentityService) -> None:
    with pytest.raises(NotFound):
        await service.erase("missing", request_id="r-3", reason="x", actor="dpo")
    with pytest.raises(InvalidInput):
        await service.erase("missing", request_id="r-4", reason="  ", actor="dpo")


async def test_export_streams_every_profile_with_its_customer(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    b = await service.upsert_profile(ProfileInput("ivr", ((EMAIL, "a@example.com"),), source_id="B"))
    c = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "c@example.com"),), source_id="C"))
    rows = [row async for row in service.export_rows(page_size=2)]
    assert {(r.profile_id, r.source, r.source_id, r.customer_id) for r in rows} == {
        (a.profile.id, "crm", "A", a.profile.id),
        (b.profile.id, "ivr", "B", a.profile.id),
        (c.profile.id, "crm", "C", c.profile.id),
    }


async def test_a_consistency_token_not_issued_here_is_invalid_input(service: IdentityService) -> None:
    with pytest.raises(InvalidInput):
        await service.resolve([(EMAIL, "a@example.com")], consistency="!!not-a-token!!")


async def test_an_erased_value_stored_under_an_older_rule_is_suppressed_in_todays_form_too(
    service: IdentityService, driver: AsyncDriver
) -> None:
    stored = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "kept@example.com"),), source_id="C-1"))
    # A phone number written before normalization ran (what `idgraph renormalize` would fold).
    await driver.execute_query(
        "MATCH (p:Profile {id: $id}) CREATE (p)-[:HAS_IDENTITY {raw: '(415) 555-0100', source: 'crm'}]->"
        "(:Identity {key: 'phone_number', value: '(415) 555-0100', rule: 'None', rule_version: 'old'})",
        id=stored.profile.id,
    )
    receipt = await service.erase(stored.profile.id, request_id="dsr-old-rule", reason="opt-out", actor="dpo")
    assert receipt.identities_deleted == 2
    with pytest.raises(Suppressed):  # the next sync carries the number as it is normalized today
        await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+1 415 555 0100"),), source_id="I-1"))


async def test_an_opt_out_for_values_nobody_holds_suppresses_them_unless_a_profile_took_one_meanwhile(
    service: IdentityService, driver: AsyncDriver
) -> None:
    held = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "held@example.com"),), source_id="C-1"))
    taken = await service.suppress_absent(
        [(EMAIL, "held@example.com"), (PHONE, "+1 415 555 0111")], request_id="webhook:e1", reason="t", actor="crm"
    )
    assert taken is None, "a held value was suppressed without erasing its holder"
    assert await service.customer(held.profile.id) is not None

    receipt = await service.suppress_absent(
        [(PHONE, "+1 415 555 0111")], request_id="webhook:e2", reason="t", actor="c"
    )
    assert receipt is not None and (receipt.profiles_deleted, receipt.suppressed) == (0, 1)
    records, _, _ = await driver.execute_query("MATCH (i:Identity {key: 'phone_number'}) RETURN count(i) AS n")
    assert records[0]["n"] == 0, "the placeholder identity node was left behind"
    with pytest.raises(Suppressed):
        await service.upsert_profile(ProfileInput("ivr", ((PHONE, "(415) 555-0111"),), source_id="I-1"))
    with pytest.raises(InvalidInput):
        await service.suppress_absent([(PHONE, "+1 415 555 0112")], request_id="dsr-1", reason="t", actor="c")
