"""Upsert, bulk ingest, merge, unmerge and unlink on the in-memory repository: idempotency, rejected values, the
suppression list, the fan-out and identity limits, conflicts, without Neo4j."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from app.domain.model import IdentityKey, ProfileInput, RejectionReason, ResolutionStatus
from app.domain.strategy import OnSuppressedValue, Protections, Strategy, default_strategy
from app.errors import Conflict, InvalidInput, NotFound, Suppressed
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.unit.fake_repository import InMemoryRepository
from tests.unit.use_case_support import ACCOUNT, EMAIL, PHONE, make_service, uncontested

DEFAULT = default_strategy()


def protected(protections: Protections) -> Strategy:
    return replace(DEFAULT, protections=protections)


async def erase_person_with(service: IdentityService, email: str, source_id: str) -> str:
    gone = await service.upsert_profile(ProfileInput("crm", ((EMAIL, email),), source_id=source_id))
    await service.erase(gone.profile.id, request_id=f"req-{source_id}", reason="GDPR Art. 17", actor="dpo")
    return gone.profile.id


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
    assert second.consistency_token != first.consistency_token


async def test_an_identity_collected_later_joins_the_named_profile(service: IdentityService) -> None:
    call = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    linked = await service.upsert_profile(
        ProfileInput("ivr", ((EMAIL, "New.Address@example.org"),), profile_id=call.profile.id)
    )
    assert linked.profile.id == call.profile.id and not linked.created
    assert linked.profile.identities == (
        IdentityKey(EMAIL, "new.address@example.org"),
        IdentityKey(PHONE, "+14155552671"),
    )


async def test_rejected_single_values_are_listed_and_the_rest_stored(service: IdentityService) -> None:
    result = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "not-an-email"), ("fax", "123")), source_id="C-1")
    )
    assert sorted((r.key, r.reason) for r in result.rejected) == [
        (EMAIL, RejectionReason.INVALID_EMAIL),
        ("fax", RejectionReason.UNKNOWN_KEY),
    ]
    assert [i.identity for i in result.customer.identities] == [IdentityKey(PHONE, "+14155552671")]


async def test_an_input_with_nothing_usable_is_refused_and_writes_nothing(
    service: IdentityService, repo: InMemoryRepository
) -> None:
    with pytest.raises(InvalidInput, match="INVALID_EMAIL"):
        await service.upsert_profile(ProfileInput("crm", ((EMAIL, "not-an-email"),), source_id="C-1"))
    with pytest.raises(InvalidInput):
        await service.upsert_profile(ProfileInput("bad source!", ((EMAIL, "a@example.com"),)))
    assert repo.graph.profiles == {}


async def test_an_input_naming_only_a_profile_id_is_refused_and_changes_nothing(
    service: IdentityService, repo: InMemoryRepository
) -> None:
    stored = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="C-1"))
    before = copy.deepcopy(repo.graph)
    with pytest.raises(InvalidInput, match="nothing to store"):
        await service.upsert_profile(ProfileInput("api", (), profile_id=stored.profile.id))
    assert repo.graph == before


async def test_adding_to_an_unknown_profile_is_not_found(service: IdentityService) -> None:
    with pytest.raises(NotFound):
        await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), profile_id="no-such-profile"))


async def test_a_batch_naming_one_profile_twice_gives_it_one_edge_per_identity(service: IdentityService) -> None:
    first = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="C-1"))
    results = await service.upsert_profiles(
        [
            ProfileInput("crm", ((PHONE, "(415) 555-2671"),), source_id="C-1"),
            ProfileInput("api", ((PHONE, "+14155552671"),), profile_id=first.profile.id),
        ]
    )
    assert {r.profile.id for r in results} == {first.profile.id}
    assert [link.value for link in results[-1].customer.links if link.key == PHONE] == ["+14155552671"]


async def test_a_bulk_batch_stores_the_usable_inputs_and_reports_the_others(service: IdentityService) -> None:
    outcomes = await service.ingest_batch(
        [
            ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"),
            ProfileInput("api", ((EMAIL, "ghost@example.com"),), profile_id="no-such-profile"),
            ProfileInput("crm", ((EMAIL, "broken"),), source_id="C-2"),
            ProfileInput("ivr", ((PHONE, "415.555.2671"), (EMAIL, "b@example.com")), source_id="I-1"),
        ]
    )
    assert [type(o.error) for o in outcomes] == [type(None), NotFound, InvalidInput, type(None)]
    found = await service.resolve([(EMAIL, "b@example.com")])
    assert found.customer is not None and len(found.customer.profiles) == 2
    assert (await service.resolve([(EMAIL, "ghost@example.com")])).status is ResolutionStatus.NOT_FOUND


async def test_a_record_carrying_an_erased_value_is_refused_whole_by_default(service: IdentityService) -> None:
    await erase_person_with(service, "gone@example.com", "C-1")
    with pytest.raises(Suppressed, match="refused whole"):
        await service.upsert_profile(
            ProfileInput("crm", ((EMAIL, " GONE@example.com"), (EMAIL, "fresh@example.com")), source_id="C-3")
        )
    assert (await service.resolve([(EMAIL, "fresh@example.com")])).status is ResolutionStatus.NOT_FOUND


async def test_with_drop_value_an_erased_value_is_left_out_and_the_rest_stored(
    service: IdentityService, repo: InMemoryRepository, clock: Clock
) -> None:
    await erase_person_with(service, "gone@example.com", "C-1")
    dropping = make_service(
        repo, clock, protected(replace(DEFAULT.protections, on_suppressed_value=OnSuppressedValue.DROP_VALUE))
    )
    partly = await dropping.upsert_profile(
        ProfileInput("crm", ((EMAIL, "gone@example.com"), (EMAIL, "fresh@example.com")), source_id="C-3")
    )
    assert [(r.key, r.reason) for r in partly.rejected] == [(EMAIL, RejectionReason.SUPPRESSED)]
    assert [i.value for i in partly.customer.identities] == ["fresh@example.com"]
    with pytest.raises(Suppressed):  # nothing left once the erased value is dropped
        await dropping.upsert_profile(ProfileInput("crm", ((EMAIL, "gone@example.com"),), source_id="C-4"))


async def test_an_erased_source_record_is_refused_whatever_it_carries(service: IdentityService) -> None:
    await erase_person_with(service, "gone@example.com", "C-1")
    with pytest.raises(Suppressed, match="source record was erased"):
        await service.upsert_profile(ProfileInput("crm", ((EMAIL, "fresh@example.com"),), source_id=" C-1 "))
    stored = await service.upsert_profile(ProfileInput("ivr", ((EMAIL, "fresh@example.com"),), source_id="C-1"))
    assert stored.created  # the same id in another source is another record


async def test_writing_into_an_erased_profile_says_suppressed_not_not_found(service: IdentityService) -> None:
    erased = await erase_person_with(service, "gone@example.com", "C-1")
    with pytest.raises(Suppressed, match="profile was erased"):
        await service.upsert_profile(ProfileInput("api", ((EMAIL, "fresh@example.com"),), profile_id=erased))


async def test_a_number_shared_beyond_the_fan_out_limit_stops_linking(repo: InMemoryRepository, clock: Clock) -> None:
    service = make_service(repo, clock, protected(replace(DEFAULT.protections, max_profiles_per_identity=3)))
    results = [
        await service.upsert_profile(ProfileInput("crm", ((PHONE, "+18005550100"),), source_id=f"S-{n}"))
        for n in range(4)
    ]
    assert len(results[2].customer.profiles) == 3  # up to the limit it links
    assert len(results[3].customer.profiles) == 1  # beyond, it links no one, the earlier holders included
    assert [(i.saturated, i.profile_count) for i in results[3].customer.identities] == [(True, 4)]
    for result in results:
        customer = await service.customer(result.profile.id)
        assert customer is not None and [link.linking for link in customer.links] == [False]


async def test_a_profile_over_the_identity_limit_is_refused_and_the_others_stored(
    repo: InMemoryRepository, clock: Clock
) -> None:
    service = make_service(repo, clock, protected(replace(DEFAULT.protections, max_identities_per_profile=2)))
    await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "a@example.com")), source_id="A")
    )
    outcomes = await service.ingest_batch(
        [
            ProfileInput("crm", ((EMAIL, "third@example.com"),), source_id="A"),
            ProfileInput("crm", ((EMAIL, "b@example.com"),), source_id="B"),
        ]
    )
    assert isinstance(outcomes[0].error, InvalidInput) and "would hold 3 identities" in outcomes[0].error.message
    assert outcomes[1].error is None
    assert (await service.resolve([(EMAIL, "third@example.com")])).status is ResolutionStatus.NOT_FOUND


async def test_a_merge_giving_one_customer_two_account_ids_is_a_conflict_unless_forced(
    service: IdentityService,
) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-1"),), source_id="A"))
    b = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="B"))
    with pytest.raises(Conflict, match="account_id"):
        await service.merge_profiles(a.profile.id, b.profile.id, actor="steward")
    assert len((await service.resolve([(ACCOUNT, "ACCT-1"), (ACCOUNT, "ACCT-2")])).candidates) == 2  # not merged
    forced = await service.merge_profiles(a.profile.id, b.profile.id, actor="steward", force=True)
    assert [(c.key, c.values) for c in forced.conflicts] == [(ACCOUNT, ("ACCT-1", "ACCT-2"))]


async def test_a_merge_keeps_an_existing_conflict_without_refusing(repo: InMemoryRepository, clock: Clock) -> None:
    service = make_service(repo, clock, uncontested())  # the household's landline joins it: an existing conflict
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"), (ACCOUNT, "ACCT-1")), source_id="A"))
    b = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"), (ACCOUNT, "ACCT-2")), source_id="B"))
    c = await service.upsert_profile(ProfileInput("web", ((EMAIL, "c@example.com"),), source_id="C"))
    merged = await service.merge_profiles(c.profile.id, b.profile.id, actor="steward")
    assert len(merged.profiles) == 3 and [x.key for x in merged.conflicts] == [ACCOUNT]


async def test_merge_is_idempotent_and_unmerge_splits_again(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    b = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="B"))
    once = await service.merge_profiles(b.profile.id, a.profile.id, actor="steward", reason="called about order")
    twice = await service.merge_profiles(b.profile.id, a.profile.id, actor="other")
    assert once.id == twice.id == a.profile.id
    assert [(m.by, m.reason) for m in twice.merges] == [("steward", "called about order")]
    split = await service.unmerge_profiles(b.profile.id, a.profile.id, actor="steward")
    assert sorted(len(c.profiles) for c in split) == [1, 1]
    with pytest.raises(NotFound):
        await service.unmerge_profiles(b.profile.id, a.profile.id, actor="steward")


async def test_merge_refuses_itself_and_unknown_profiles(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    with pytest.raises(InvalidInput):
        await service.merge_profiles(a.profile.id, a.profile.id, actor="steward")
    with pytest.raises(NotFound):
        await service.merge_profiles(a.profile.id, "no-such-profile", actor="steward")


async def test_merging_into_an_erased_profile_says_suppressed(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "a@example.com"),), source_id="A"))
    erased = await erase_person_with(service, "gone@example.com", "C-1")
    with pytest.raises(Suppressed, match=erased):
        await service.merge_profiles(a.profile.id, erased, actor="steward")


async def test_unlinking_the_only_shared_identity_splits_the_customer(service: IdentityService) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="A"))
    b = await service.upsert_profile(
        ProfileInput("ivr", ((PHONE, "+14155552671"), (EMAIL, "b@example.com")), source_id="B")
    )
    assert len(b.customer.profiles) == 2
    after = await service.unlink_identity(b.profile.id, PHONE, "(415) 555-2671", actor="steward")
    assert after is not None and [p.id for p in after.profiles] == [b.profile.id]
    with pytest.raises(NotFound):
        await service.unlink_identity(b.profile.id, PHONE, "+14155552671", actor="steward")
    found = await service.resolve([(PHONE, "+14155552671")])
    assert found.customer is not None and [p.id for p in found.customer.profiles] == [a.profile.id]


async def test_a_value_blocked_since_it_was_stored_cannot_make_a_merge_conflict(
    repo: InMemoryRepository, clock: Clock
) -> None:
    blocking = replace(DEFAULT.protections, blocked_values=DEFAULT.protections.blocked_values | {"ACCT-TEST"})
    before = make_service(repo, clock)
    a = await before.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-TEST"),), source_id="A"))
    b = await before.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="B"))
    service = make_service(repo, clock, protected(blocking))
    merged = await service.merge_profiles(a.profile.id, b.profile.id, actor="steward")
    assert merged.conflicts == ()
