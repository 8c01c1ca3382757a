"""The in-memory repository's change log (tests/unit/fake_changes.py) records what the real one does
(tests/integration/test_change_log.py), so the feed's use-case tests can rely on it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.domain.changes import Audit, ChangeType
from app.domain.model import ProfileInput
from app.errors import Conflict, Suppressed
from app.services.identity import IdentityService
from tests.unit.fake_repository import InMemoryRepository
from tests.unit.use_case_support import ACCOUNT, EMAIL, PHONE

T = ChangeType
STEWARD = Audit("steward", "req-1")


async def test_upserts_record_created_updated_and_linked_and_nothing_for_a_repeat(
    service: IdentityService, repo: InMemoryRepository
) -> None:
    item = ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1", attributes={"tier": "Gold"})
    a = await service.upsert_profile(item, audit=STEWARD)
    await service.upsert_profile(item, audit=STEWARD)
    await service.upsert_profile(replace(item, attributes={"tier": "Platinum"}), audit=STEWARD)
    await service.upsert_profile(ProfileInput("api", ((EMAIL, "a@example.com"),), profile_id=a.profile.id))
    events = await repo.changes(after=0, limit=10)
    assert [(e.seq, e.type, e.profile_ids) for e in events] == [
        (1, T.PROFILE_CREATED, (a.profile.id,)),
        (2, T.PROFILE_UPDATED, (a.profile.id,)),
        (3, T.IDENTITY_LINKED, (a.profile.id,)),
    ]
    assert (events[0].actor, events[0].request_id, events[0].customer_after) == ("steward", "req-1", a.profile.id)
    assert events[2].actor == "unattributed"  # no edge named anyone: visible, never a guess
    assert await repo.last_change() == 3


async def test_merge_and_erasure_carry_customers_and_refusals_record_nothing(
    service: IdentityService, repo: InMemoryRepository
) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-1"),), source_id="C-1"))
    b = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="C-2"))
    c = await service.upsert_profile(ProfileInput("web", ((EMAIL, "c@example.com"),), source_id="W-1"))
    with pytest.raises(Conflict):
        await service.merge_profiles(b.profile.id, a.profile.id, actor="steward")
    await service.merge_profiles(c.profile.id, a.profile.id, actor="steward", reason="same", request_id="r-2")
    await service.erase(c.profile.id, request_id="gdpr-1", reason="asked", actor="dpo")
    with pytest.raises(Suppressed):
        await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-1"),), source_id="C-9"))
    merge, erased = await repo.changes(after=3, limit=10)
    assert (merge.type, merge.profile_ids, merge.customer_before, merge.customer_after, merge.reason) == (
        T.MERGE,
        (c.profile.id, a.profile.id),
        c.profile.id,
        a.profile.id,
        "same",
    )
    assert (erased.type, erased.customer_before, erased.actor, erased.request_id) == (
        T.CUSTOMER_ERASED,
        a.profile.id,
        "dpo",
        "gdpr-1",
    )
    assert set(erased.profile_ids) == {a.profile.id, c.profile.id}
    assert [e.seq for e in await repo.changes(after=0, limit=10, customer_id=a.profile.id)] == [1, 4, 5]
    assert [e.seq for e in await repo.changes(after=0, limit=10, types=frozenset({T.MERGE}))] == [4]
