"""Erasure on the in-memory repository: plans, receipts and their counts, idempotency per subject, reserved request
ids, retention purges that suppress nothing, opt-outs for absent values, without Neo4j."""

from __future__ import annotations

import copy

import pytest

from app.domain.model import ErasedRecord, IdentityKey, ProfileInput, ResolutionStatus
from app.errors import Conflict, InvalidInput, NotFound, Suppressed
from app.services.identity import IdentityService
from tests.unit.fake_repository import InMemoryRepository
from tests.unit.use_case_support import EMAIL, PHONE

PHONE_VALUE = IdentityKey(PHONE, "+14155552671")
ANN = IdentityKey(EMAIL, "ann@example.com")
BOB = IdentityKey(EMAIL, "bob@example.com")


async def household(service: IdentityService) -> tuple[str, str]:
    """Two profiles joined by a phone, each with an email of its own: one customer."""
    ann = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "ann@example.com")), source_id="A")
    )
    bob = await service.upsert_profile(
        ProfileInput("ivr", ((PHONE, "415-555-2671"), (EMAIL, "bob@example.com")), source_id="B")
    )
    return ann.profile.id, bob.profile.id


async def test_the_plan_for_one_profile_deletes_its_own_values_and_keeps_the_shared_ones(
    service: IdentityService, repo: InMemoryRepository
) -> None:
    ann, _ = await household(service)
    before = copy.deepcopy(repo.graph)
    plan = await service.erasure_plan(ann, whole_customer=False)
    assert plan.profile_ids == (ann,)
    assert (plan.identities, plan.kept_identities) == ((ANN,), (PHONE_VALUE,))
    assert plan.records == (ErasedRecord(ann, "crm", "A"),)
    assert repo.graph == before  # a plan changes nothing


async def test_the_plan_for_a_customer_covers_every_profile_and_keeps_values_others_hold(
    service: IdentityService,
) -> None:
    ann, bob = await household(service)
    other = await service.upsert_profile(
        ProfileInput("web", ((EMAIL, "test@example.com"), (EMAIL, "carl@example.com")), source_id="C")
    )
    await service.upsert_profile(ProfileInput("crm", ((EMAIL, "test@example.com"),), profile_id=ann))
    plan = await service.erasure_plan(bob)
    assert plan.profile_ids == tuple(sorted([ann, bob]))
    assert plan.identities == (ANN, BOB, PHONE_VALUE)
    assert plan.kept_identities == (IdentityKey(EMAIL, "test@example.com"),)  # blocked: joins no one, other holds it
    assert other.profile.id not in plan.profile_ids


async def test_a_plan_for_an_unknown_profile_is_not_found(service: IdentityService) -> None:
    with pytest.raises(NotFound):
        await service.erasure_plan("no-such-profile")
    with pytest.raises(NotFound):
        await service.erasure_plan("no-such-profile", whole_customer=False)


async def test_erasing_a_customer_deletes_it_and_returns_a_receipt_with_counts(service: IdentityService) -> None:
    ann, bob = await household(service)
    other = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "stays@example.com"),), source_id="C"))
    receipt = await service.erase(bob, request_id="req-1", reason=" GDPR Art. 17 ", actor="dpo")
    assert (receipt.request_id, receipt.status, receipt.requested_by, receipt.reason) == (
        "req-1",
        "COMPLETED",
        "dpo",
        "GDPR Art. 17",
    )
    assert (receipt.profiles_deleted, receipt.identities_deleted, receipt.suppressed) == (2, 3, 3)
    assert receipt.records_suppressed == 4  # two source records and two profile ids
    assert await service.customer(ann) is None and await service.customer(bob) is None
    assert (await service.resolve([(EMAIL, "ann@example.com")])).status is ResolutionStatus.NOT_FOUND
    assert await service.customer(other.profile.id) is not None
    assert await service.erasure_receipt("req-1") == receipt


async def test_an_erased_value_cannot_come_back_in_any_spelling(service: IdentityService) -> None:
    ann, _ = await household(service)
    await service.erase(ann, request_id="req-1", reason="opt-out", actor="dpo")
    with pytest.raises(Suppressed):
        await service.upsert_profile(ProfileInput("web", ((PHONE, "(415) 555-2671"),), source_id="W-1"))


async def test_erasing_one_profile_keeps_the_rest_of_the_customer(service: IdentityService) -> None:
    ann, bob = await household(service)
    receipt = await service.erase(ann, request_id="req-1", reason="opt-out", actor="dpo", whole_customer=False)
    assert (receipt.profiles_deleted, receipt.identities_deleted, receipt.suppressed) == (1, 1, 1)
    remaining = await service.customer(bob)
    assert remaining is not None and [i.identity for i in remaining.identities] == [BOB, PHONE_VALUE]


async def test_a_blocked_value_is_never_suppressed(service: IdentityService) -> None:
    gone = await service.upsert_profile(
        ProfileInput("crm", ((EMAIL, "test@example.com"), (EMAIL, "gone@example.com")), source_id="A")
    )
    receipt = await service.erase(gone.profile.id, request_id="req-1", reason="opt-out", actor="dpo")
    assert (receipt.identities_deleted, receipt.suppressed) == (2, 1)
    again = await service.upsert_profile(ProfileInput("web", ((EMAIL, "test@example.com"),), source_id="W-1"))
    assert again.created


async def test_erase_is_idempotent_for_the_same_subject(service: IdentityService, repo: InMemoryRepository) -> None:
    ann, bob = await household(service)
    first = await service.erase(ann, request_id="req-1", reason="opt-out", actor="dpo")
    after = copy.deepcopy(repo.graph)
    assert await service.erase(ann, request_id="req-1", reason="opt-out", actor="dpo") == first
    assert await service.erase(bob, request_id="req-1", reason="opt-out", actor="dpo") == first  # it deleted bob too
    assert repo.graph == after


async def test_a_request_id_used_for_another_subject_is_a_conflict_and_erases_nothing(
    service: IdentityService,
) -> None:
    ann, _ = await household(service)
    other = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "other@example.com"),), source_id="C"))
    await service.erase(ann, request_id="req-1", reason="opt-out", actor="dpo")
    with pytest.raises(Conflict, match="already used"):
        await service.erase(other.profile.id, request_id="req-1", reason="opt-out", actor="dpo")
    assert await service.customer(other.profile.id) is not None


@pytest.mark.parametrize(
    ("request_id", "suppress", "reserved_for"),
    [
        ("webhook:evt-1", True, "CRM webhook"),
        ("webhook:evt-1", False, "CRM webhook"),
        ("purge:2026-11-20:x", True, "purges"),
    ],
)
async def test_webhook_and_purge_request_ids_are_reserved(
    service: IdentityService, request_id: str, suppress: bool, reserved_for: str
) -> None:
    ann, _ = await household(service)
    with pytest.raises(InvalidInput, match=reserved_for):
        await service.erase(ann, request_id=request_id, reason="opt-out", actor="dpo", suppress=suppress)
    assert await service.customer(ann) is not None


async def test_the_crm_webhook_may_use_its_own_request_ids(service: IdentityService) -> None:
    ann, _ = await household(service)
    receipt = await service.erase(ann, request_id="webhook:evt-1", reason="CRM opt-out", actor="crm", webhook=True)
    assert receipt.profiles_deleted == 2


async def test_a_retention_erase_suppresses_nothing_so_a_later_sync_may_return(service: IdentityService) -> None:
    ann, _ = await household(service)
    receipt = await service.erase(
        ann, request_id=f"purge:2026-11-20:{ann}", reason="retention", actor="purge", suppress=False
    )
    assert (receipt.profiles_deleted, receipt.suppressed, receipt.records_suppressed) == (2, 0, 0)
    back = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "ann@example.com")), source_id="A")
    )
    assert back.created


async def test_an_erasure_needs_a_reason_and_an_existing_profile(service: IdentityService) -> None:
    ann, _ = await household(service)
    with pytest.raises(InvalidInput, match="reason"):
        await service.erase(ann, request_id="req-1", reason="  ", actor="dpo")
    with pytest.raises(NotFound):
        await service.erase("no-such-profile", request_id="req-2", reason="opt-out", actor="dpo")
    assert await service.erasure_receipt("req-1") is None and await service.erasure_receipt("req-2") is None


async def test_an_opt_out_for_values_nobody_holds_suppresses_them_unless_a_profile_holds_one(
    service: IdentityService,
) -> None:
    receipt = await service.suppress_absent(
        [(EMAIL, "Never.Seen@example.com")], request_id="webhook:evt-1", reason="CRM opt-out", actor="crm"
    )
    assert receipt is not None and (receipt.profiles_deleted, receipt.suppressed) == (0, 1)
    with pytest.raises(Suppressed):
        await service.upsert_profile(ProfileInput("crm", ((EMAIL, "never.seen@example.com"),), source_id="C-1"))
    await household(service)
    held = await service.suppress_absent(
        [(EMAIL, "ann@example.com")], request_id="webhook:evt-2", reason="CRM opt-out", actor="crm"
    )
    assert held is None
    with pytest.raises(InvalidInput):
        await service.suppress_absent([(EMAIL, "x@example.com")], request_id="req-3", reason="opt-out", actor="dpo")
