"""The change log on the real Neo4j: every mutation writes exactly its events in its own transaction, none when it
changes nothing or fails, with the actor, request id and reason it was given; and the log's reads and filters."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from app.bulk.purge import purge
from app.config import Settings
from app.db.changes import ChangeLogRepository
from app.db.driver import AsyncDriver
from app.db.maintenance import MaintenanceRepository
from app.db.queries import query
from app.db.repository import Neo4jRepository
from app.domain.changes import ACTOR_CLI, ACTOR_RETENTION, Audit, ChangeEvent, ChangeType
from app.domain.model import ProfileInput
from app.domain.strategy import Strategy, default_strategy
from app.errors import Conflict, InvalidInput, NotFound, Suppressed
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.integration.conftest import make_service

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"
ACCOUNT = "account_id"
STEWARD = Audit("steward-token", "req-1")

T = ChangeType


async def log(repo: ChangeLogRepository, after: int = 0) -> list[ChangeEvent]:
    return await repo.changes(after=after, limit=1000)


def kinds(events: list[ChangeEvent]) -> list[tuple[ChangeType, tuple[str, ...]]]:
    return [(e.type, e.profile_ids) for e in events]


def strategy_with(**protections: Any) -> Strategy:
    strategy = default_strategy()
    return replace(strategy, protections=replace(strategy.protections, **protections))


async def test_an_upsert_records_what_it_changed_and_nothing_when_it_changed_nothing(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    item = ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1", attributes={"tier": "Gold"})
    a = await service.upsert_profile(item, audit=STEWARD)
    [created] = await log(repo)
    assert (created.type, created.profile_ids, created.seq, created.cursor) == (
        T.PROFILE_CREATED,
        (a.profile.id,),
        1,
        "1",
    )
    assert (created.actor, created.request_id, created.reason) == ("steward-token", "req-1", None)
    assert (created.customer_before, created.customer_after) == (None, a.customer.id)

    await service.upsert_profile(item, audit=STEWARD)  # the same again: changes nothing
    await service.upsert_profile(replace(item, identities=((PHONE, "(415) 555-2671"),)), audit=STEWARD)  # same value
    assert await repo.last_change() == 1 and len(await log(repo)) == 1

    await service.upsert_profile(replace(item, attributes={"tier": "Platinum"}), audit=STEWARD)
    await service.upsert_profile(replace(item, identities=((EMAIL, "a@example.com"),), attributes={}), audit=STEWARD)
    await service.upsert_profile(replace(item, attributes={"tier": None}), audit=STEWARD)  # removes it
    await service.upsert_profile(replace(item, attributes={"tier": None}), audit=STEWARD)  # already gone
    assert kinds(await log(repo, after=1)) == [(T.PROFILE_UPDATED, (a.profile.id,))] * 3


async def test_linking_identities_by_profile_id_records_identity_linked_once(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    b = await service.upsert_profile(ProfileInput("web", ((EMAIL, "b@example.com"),), source_id="W-1"))
    link = ProfileInput("api", ((EMAIL, "b@example.com"),), profile_id=a.profile.id)
    linked = await service.upsert_profile(link, audit=STEWARD)
    await service.upsert_profile(link, audit=STEWARD)  # held already
    [event] = await log(repo, after=2)
    assert (event.type, event.profile_ids) == (T.IDENTITY_LINKED, (a.profile.id,))
    assert event.customer_after == linked.customer.id == a.profile.id  # the oldest profile of the two
    assert b.profile.id in {p.id for p in linked.customer.profiles}


async def test_a_bulk_batch_records_one_event_per_changed_profile_and_a_rerun_none(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    items = [ProfileInput("crm", ((PHONE, f"+1415555{n:04d}"),), source_id=f"C-{n}") for n in range(20)]
    first = await service.ingest_batch(items, audit=Audit(ACTOR_CLI))
    events = await log(repo)
    assert sorted(kinds(events)) == sorted((T.PROFILE_CREATED, (o.profile_id,)) for o in first if o.profile_id)
    assert [e.seq for e in events] == list(range(1, 21))
    assert {(e.actor, e.customer_after) for e in events} == {(ACTOR_CLI, None)}  # the bulk path reads no customer
    await service.ingest_batch(items, audit=Audit(ACTOR_CLI))
    assert await repo.last_change() == 20


async def test_a_write_that_saturates_an_identity_names_its_holders(repo: Neo4jRepository, clock: Clock) -> None:
    service = make_service(repo, clock, strategy_with(max_profiles_per_identity=2))
    written = [
        await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id=f"C-{n}"))
        for n in range(3)
    ]
    events = await log(repo, after=2)
    holders = tuple(sorted(w.profile.id for w in written))
    assert kinds(events) == [(T.PROFILE_CREATED, (written[2].profile.id,)), (T.IDENTITY_SATURATED, holders)]


async def test_refused_writes_leave_no_event(service: IdentityService, repo: Neo4jRepository, clock: Clock) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    await service.erase(a.profile.id, request_id="gdpr-1", reason="request", actor="dpo")
    seen = await repo.last_change()
    with pytest.raises(Suppressed):  # the erased person's value: refused under the locks, rolled back
        await service.upsert_profile(ProfileInput("web", ((PHONE, "+14155552671"),), source_id="W-1"))
    capped = make_service(repo, clock, strategy_with(max_identities_per_profile=1))
    await capped.upsert_profile(ProfileInput("web", ((EMAIL, "x@example.com"),), source_id="W-2"))
    seen += 1
    with pytest.raises(InvalidInput):  # TooManyIdentities, counted in the writing transaction: rolled back
        await capped.upsert_profile(ProfileInput("web", ((EMAIL, "y@example.com"),), source_id="W-2"))
    b = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-1"),), source_id="C-2"))
    c = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="C-3"))
    seen += 2
    with pytest.raises(Conflict):  # two account ids in one customer: refused in the merging transaction
        await service.merge_profiles(b.profile.id, c.profile.id, actor="steward")
    with pytest.raises(NotFound):
        await service.unlink_identity(b.profile.id, EMAIL, "nobody@example.com", actor="steward")
    with pytest.raises(NotFound):
        await service.unmerge_profiles(b.profile.id, c.profile.id, actor="steward")
    assert await repo.last_change() == seen
    assert [e.seq for e in await log(repo)] == list(range(1, seen + 1))


async def test_merge_unmerge_and_unlink_record_who_and_why(service: IdentityService, repo: Neo4jRepository) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    b = await service.upsert_profile(ProfileInput("web", ((EMAIL, "b@example.com"),), source_id="W-1"))
    merged = await service.merge_profiles(
        b.profile.id, a.profile.id, actor="steward", reason="same person", request_id="r-9"
    )
    await service.merge_profiles(b.profile.id, a.profile.id, actor="steward", reason="again")  # exists: no event
    [merge] = await log(repo, after=2)
    assert (merge.type, merge.profile_ids) == (T.MERGE, (b.profile.id, a.profile.id))
    assert (merge.customer_before, merge.customer_after) == (b.profile.id, merged.id) == (b.profile.id, a.profile.id)
    assert (merge.actor, merge.request_id, merge.reason) == ("steward", "r-9", "same person")

    await service.unmerge_profiles(b.profile.id, a.profile.id, actor="other-token", request_id="r-10")
    await service.unlink_identity(a.profile.id, PHONE, "(415) 555-2671", actor="other-token")
    unmerge, unlink = await log(repo, after=merge.seq)
    assert (unmerge.type, unmerge.profile_ids, unmerge.actor, unmerge.request_id) == (
        T.UNMERGE,
        (b.profile.id, a.profile.id),
        "other-token",
        "r-10",
    )
    assert (unlink.type, unlink.profile_ids, unlink.request_id) == (T.IDENTITY_UNLINKED, (a.profile.id,), None)


async def test_erasures_record_the_ids_erased_and_the_customer_before(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    b = await service.upsert_profile(ProfileInput("web", ((PHONE, "+14155552671"),), source_id="W-1"))
    c = await service.upsert_profile(ProfileInput("ivr", ((EMAIL, "c@example.com"),), source_id="I-1"))
    d = await service.upsert_profile(ProfileInput("ivr", ((EMAIL, "c@example.com"),), source_id="I-2"))
    start = await repo.last_change()
    await service.erase(b.profile.id, request_id="gdpr-1", reason="art. 17", actor="dpo")
    await service.erase(b.profile.id, request_id="gdpr-1", reason="art. 17", actor="dpo")  # a repeat: no event
    await service.erase(d.profile.id, request_id="gdpr-2", reason="one", actor="dpo", whole_customer=False)
    whole, one = await log(repo, after=start)
    assert (whole.type, whole.profile_ids, whole.customer_before) == (
        T.CUSTOMER_ERASED,
        tuple(sorted([a.profile.id, b.profile.id])),
        a.profile.id,
    )
    assert (whole.actor, whole.request_id, whole.reason) == ("dpo", "gdpr-1", "art. 17")
    assert (one.type, one.profile_ids, one.customer_before) == (T.PROFILE_ERASED, (d.profile.id,), c.profile.id)
    # Events outlive the profiles they name: the erased profile's history is still there.
    assert [e.type for e in await repo.changes(after=0, limit=10, profile_ids=[b.profile.id])] == [
        T.PROFILE_CREATED,
        T.CUSTOMER_ERASED,
    ]


async def test_an_opt_out_of_absent_values_records_an_erasure_naming_no_profile(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    receipt = await service.suppress_absent(
        [(PHONE, "+14155550000")], request_id="webhook:ev-1", reason="opt-out", actor="crm-webhook"
    )
    assert receipt is not None
    [event] = await log(repo)
    assert (event.type, event.profile_ids, event.actor, event.request_id) == (
        T.CUSTOMER_ERASED,
        (),
        "crm-webhook",
        "webhook:ev-1",
    )


async def test_a_purge_records_retention_purge_by_its_actor(
    service: IdentityService, repo: Neo4jRepository, driver: AsyncDriver, clock: Clock
) -> None:
    old = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    maintenance = MaintenanceRepository(driver, timeout_s=60.0)
    now = clock.now + timedelta(days=40)
    await purge(service, maintenance, inactive_days=30, now=now, actor=ACTOR_RETENTION)
    await purge(service, maintenance, inactive_days=30, now=now, actor=ACTOR_RETENTION)  # done already: no event
    [event] = await log(repo, after=1)
    assert (event.type, event.profile_ids, event.actor, event.customer_before) == (
        T.RETENTION_PURGE,
        (old.profile.id,),
        ACTOR_RETENTION,
        old.profile.id,
    )
    assert event.request_id is not None and event.request_id.startswith("purge:")


async def test_reads_filter_by_type_profile_and_customer_and_page_by_cursor(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    a = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    b = await service.upsert_profile(ProfileInput("web", ((EMAIL, "b@example.com"),), source_id="W-1"))
    await service.merge_profiles(b.profile.id, a.profile.id, actor="steward")
    await service.upsert_profile(ProfileInput("web", ((EMAIL, "c@example.com"),), source_id="W-2"))
    assert await repo.last_change() == 4
    assert [e.seq for e in await repo.changes(after=1, limit=2)] == [2, 3]
    assert [e.seq for e in await repo.changes(after=4, limit=10)] == []
    assert [e.seq for e in await repo.changes(after=0, limit=10, types=frozenset({T.MERGE}))] == [3]
    assert [e.seq for e in await repo.changes(after=0, limit=10, profile_ids=[b.profile.id])] == [2, 3]
    assert [e.seq for e in await repo.changes(after=2, limit=10, profile_ids=[b.profile.id])] == [3]
    # The merge's customer after is a's; a's creation had it as customer after too.
    assert [e.seq for e in await repo.changes(after=0, limit=10, customer_id=a.profile.id)] == [1, 3]
    both = await repo.changes(after=0, limit=10, profile_ids=[b.profile.id], customer_id=a.profile.id)
    assert [e.seq for e in both] == [1, 2, 3]
    typed = await repo.changes(after=0, limit=1, types=frozenset({T.PROFILE_CREATED}), profile_ids=[b.profile.id])
    assert [e.seq for e in typed] == [2]


def _operators(plan: dict[str, Any]) -> list[str]:
    found = [f"{plan['operatorType']} {plan.get('args', {}).get('Details', '')}"]
    for child in plan.get("children", []):
        found += _operators(child)
    return found


async def test_the_filters_by_profile_and_customer_are_index_seeks(driver: AsyncDriver, settings: Settings) -> None:
    _, summary, _ = await driver.execute_query(
        "EXPLAIN " + query("changes"),
        after=0,
        limit=10,
        types=None,
        profile_ids=["p-1"],
        customer_id="p-1",
        database_=settings.neo4j_database,
    )
    assert summary.plan is not None
    operators = _operators(summary.plan)
    seeks = [o for o in operators if "IndexSeek" in o]
    assert any(":ChangeProfile(id, seq)" in o for o in seeks), operators
    assert any(":ChangeCustomer(id, seq)" in o for o in seeks), operators
    assert any(":Change(seq)" in o for o in seeks), operators
    # Scans there are, of (:Change) in seq order, only in the unfiltered branch, which these parameters skip.
    assert [o for o in operators if "Scan" in o and ("ChangeProfile" in o or "ChangeCustomer" in o)] == []
