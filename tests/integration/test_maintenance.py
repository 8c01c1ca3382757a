"""Retention purge and re-normalization on the real Neo4j."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from app.bulk.purge import PURGE_ACTOR, purge, purge_request_id
from app.bulk.renormalize import renormalize, renormalize_summary
from app.db.driver import AsyncDriver
from app.db.maintenance import MaintenanceRepository
from app.db.repository import Neo4jRepository
from app.domain.model import IdentityKey, ProfileInput, ResolutionStatus
from app.domain.strategy import Protections, default_strategy
from app.domain.suppression import suppression_hash
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.erasure_key import ERASURE_KEY
from tests.integration.bulk_helpers import components, counts, holdings, load, wipe, write_jsonl
from tests.integration.conftest import make_service

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"
KEY = ERASURE_KEY.encode()  # make_service's erasure key


@pytest.fixture
def maintenance(driver: AsyncDriver) -> MaintenanceRepository:
    return MaintenanceRepository(driver, timeout_s=60.0)


async def test_purge_erases_inactive_profiles_and_keeps_recent_ones_of_the_same_customer(
    service: IdentityService, maintenance: MaintenanceRepository, driver: AsyncDriver, clock: Clock
) -> None:
    old_call = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    old_chat = await service.upsert_profile(ProfileInput("webchat", ((EMAIL, "john@example.com"),), source_id="ch-1"))
    gone = await service.upsert_profile(ProfileInput("email", ((EMAIL, "old@example.com"),), source_id="m-1"))
    clock.now += timedelta(days=40)
    recent = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, "(415) 555-2671"), (EMAIL, "john@example.com")), source_id="C-1")
    )
    assert recent.customer.id == old_call.profile.id  # one customer, two old profiles and a recent one
    now = clock.now + timedelta(days=1)
    before = (await holdings(driver), await counts(driver))

    listed: list[str] = []
    dry = await purge(service, maintenance, inactive_days=30, now=now, dry_run=True, on_candidate=listed.append)
    assert dry.candidates == 3 and dry.profiles_deleted == 0
    assert sorted(listed) == sorted([old_call.profile.id, old_chat.profile.id, gone.profile.id])
    assert (await holdings(driver), await counts(driver)) == before

    report = await purge(service, maintenance, inactive_days=30, now=now, page_size=2)
    assert (report.candidates, report.profiles_deleted, report.identities_deleted) == (3, 3, 1)
    assert report.suppressed == 0 and not report.failed  # deleted for age, not at the person's request
    left = await service.resolve([(PHONE, "+14155552671")])
    assert left.customer is not None and [p.source_id for p in left.customer.profiles] == ["C-1"]
    assert {i.value for i in left.customer.identities} == {"+14155552671", "john@example.com"}
    receipt = await service.erasure_receipt(purge_request_id(now, gone.profile.id))
    assert receipt is not None and receipt.requested_by == PURGE_ACTOR
    assert receipt.reason == "retention: inactive 30 days" and receipt.profiles_deleted == 1
    returning = await service.upsert_profile(ProfileInput("email", ((EMAIL, "old@example.com"),), source_id="m-2"))
    assert returning.created and returning.rejected == ()  # a customer coming back later is welcome

    again = await purge(service, maintenance, inactive_days=30, now=now)
    assert again.candidates == 0


LEGACY = """
CREATE (a:Profile {id: 'legacy-a', source: 'crm', source_id: 'C-1',
                   created_at: datetime('2020-01-01T00:00:00Z'), updated_at: datetime('2020-01-01T00:00:00Z')})
CREATE (b:Profile {id: 'legacy-b', source: 'ivr', source_id: 'call-9',
                   created_at: datetime('2020-01-02T00:00:00Z'), updated_at: datetime('2020-01-02T00:00:00Z')})
CREATE (c:Profile {id: 'legacy-c', source: 'webchat', source_id: 'w-1',
                   created_at: datetime('2020-01-03T00:00:00Z'), updated_at: datetime('2020-01-03T00:00:00Z')})
CREATE (d:Profile {id: 'legacy-d', source: 'billing', source_id: 'B-7',
                   created_at: datetime('2020-01-04T00:00:00Z'), updated_at: datetime('2020-01-04T00:00:00Z')})
CREATE (p1:Identity {key: 'phone_number', value: '1-800-555-0199'})
CREATE (p2:Identity {key: 'phone_number', value: '(800) 555-0199'})
CREATE (p3:Identity {key: 'phone_number', value: '800.555.0199'})
CREATE (p4:Identity {key: 'phone_number', value: '+18005550199', rule: 'E164', rule_version: 'E164/old'})
CREATE (e1:Identity {key: 'email_address', value: 'Jane@Example.COM '})
CREATE (t1:Identity {key: 'email_address', value: 'test@example.com'})
CREATE (x1:Identity {key: 'phone_number', value: '12'})
CREATE (a)-[:HAS_IDENTITY {raw: '1-800-555-0199', source: 'crm',
                           first_seen: datetime('2020-01-01T00:00:00Z'),
                           last_seen: datetime('2020-03-01T00:00:00Z')}]->(p1)
CREATE (b)-[:HAS_IDENTITY {raw: '(800) 555-0199', source: 'ivr',
                           first_seen: datetime('2020-01-02T00:00:00Z'),
                           last_seen: datetime('2020-01-02T00:00:00Z')}]->(p2)
CREATE (d)-[:HAS_IDENTITY {raw: '800.555.0199', source: 'billing',
                           first_seen: datetime('2019-06-01T00:00:00Z'),
                           last_seen: datetime('2020-02-01T00:00:00Z')}]->(p3)
CREATE (d)-[:HAS_IDENTITY {raw: '+1 800 555 0199', source: 'billing',
                           first_seen: datetime('2020-01-04T00:00:00Z'),
                           last_seen: datetime('2020-05-01T00:00:00Z')}]->(p4)
CREATE (c)-[:HAS_IDENTITY {raw: 'Jane@Example.COM ', source: 'webchat',
                           first_seen: datetime('2020-01-03T00:00:00Z'),
                           last_seen: datetime('2020-01-03T00:00:00Z')}]->(e1)
CREATE (a)-[:HAS_IDENTITY {raw: 'test@example.com', source: 'crm'}]->(t1)
CREATE (c)-[:HAS_IDENTITY {raw: 'test@example.com', source: 'webchat'}]->(t1)
CREATE (c)-[:HAS_IDENTITY {raw: '12', source: 'webchat'}]->(x1)
"""

FRESH = [
    {
        "source": "crm",
        "source_id": "C-1",
        "identities": [{"key": PHONE, "value": "1-800-555-0199"}, {"key": EMAIL, "value": "test@example.com"}],
    },
    {"source": "ivr", "source_id": "call-9", "identities": [{"key": PHONE, "value": "(800) 555-0199"}]},
    {
        "source": "webchat",
        "source_id": "w-1",
        "identities": [
            {"key": EMAIL, "value": "Jane@Example.COM "},
            {"key": EMAIL, "value": "test@example.com"},
            {"key": PHONE, "value": "12"},
        ],
    },
    {
        "source": "billing",
        "source_id": "B-7",
        "identities": [{"key": PHONE, "value": "800.555.0199"}, {"key": PHONE, "value": "+1 800 555 0199"}],
    },
]


async def test_renormalize_folds_legacy_duplicates_into_what_fresh_ingestion_gives(
    service: IdentityService, maintenance: MaintenanceRepository, driver: AsyncDriver, clock: Clock, tmp_path: Path
) -> None:
    await load(service, [write_jsonl(tmp_path / "fresh.jsonl", FRESH)], tmp_path / "r.jsonl")
    fresh = (await holdings(driver), await components(service))
    await wipe(driver)
    await driver.execute_query(LEGACY)
    legacy = (await holdings(driver), await counts(driver))
    assert len(await components(service)) == 3  # C-1 and w-1 joined by the test address; the phone split in three

    dry = await renormalize(maintenance, default_strategy(), erasure_key=KEY, now=clock(), dry_run=True, page_size=3)
    assert (await holdings(driver), await counts(driver)) == legacy
    assert (dry.identities_checked, dry.identities_folded, dry.edges_moved, dry.edges_merged) == (7, 4, 4, 1)
    assert (dry.blocked, dry.rules_updated, dict(dry.rejected)) == (1, 2, {"INVALID_PHONE": 1})

    report = await renormalize(maintenance, default_strategy(), erasure_key=KEY, now=clock(), page_size=3)
    assert (report.identities_folded, report.identities_created, report.edges_moved, report.edges_merged) == (
        4,
        1,
        4,
        1,
    )
    assert (report.blocked, report.edges_blocked, dict(report.rejected)) == (1, 2, {"INVALID_PHONE": 1})
    after = await holdings(driver)
    assert after - {("webchat", "w-1", PHONE, "12", True)} == fresh[0]  # the invalid value is reported, kept
    assert await components(service) == fresh[1]
    phone = await service.resolve([(PHONE, "1-800-555-0199")])
    assert phone.status is ResolutionStatus.FOUND and phone.customer is not None
    assert {p.id for p in phone.customer.profiles} == {"legacy-a", "legacy-b", "legacy-d"}
    d_link = next(link for link in phone.customer.links if link.profile_id == "legacy-d")
    assert (d_link.first_seen.year, d_link.first_seen.month, d_link.last_seen.month) == (2019, 6, 5)
    assert d_link.raw == "+1 800 555 0199"
    records, _, _ = await driver.execute_query(
        "MATCH (i:Identity {key: 'phone_number', value: '+18005550199'}) RETURN i.rule_version AS version"
    )
    assert records[0]["version"] != "E164/old"

    again = await renormalize(maintenance, default_strategy(), erasure_key=KEY, now=clock())
    assert (again.identities_folded, again.blocked, again.rules_updated) == (0, 0, 0)
    assert await holdings(driver) == after


async def test_a_fold_over_the_fan_out_limit_saturates_the_normalized_value(
    repo: Neo4jRepository, maintenance: MaintenanceRepository, driver: AsyncDriver, clock: Clock
) -> None:
    strategy = replace(default_strategy(), protections=Protections(max_profiles_per_identity=2))
    service = make_service(repo, clock, strategy)
    await driver.execute_query(
        "UNWIND [['a', '1-800-555-0199'], ['b', '1-800-555-0199'], ['c', '(800) 555-0199']] AS row "
        "MERGE (i:Identity {key: 'phone_number', value: row[1]}) "
        "CREATE (:Profile {id: row[0], source: 'crm', source_id: row[0], created_at: datetime(), "
        "                  updated_at: datetime()})-[:HAS_IDENTITY {raw: row[1], source: 'crm'}]->(i)"
    )
    report = await renormalize(maintenance, strategy, erasure_key=KEY, now=clock())
    assert (report.identities_folded, report.saturated) == (2, 1)
    found = await service.resolve([(PHONE, "+18005550199")])
    assert found.status is ResolutionStatus.AMBIGUOUS
    assert {(s, linking) for s, _, _, _, linking in await holdings(driver)} == {("crm", False)}


STALE = """
CREATE (a:Profile {id: 'stale-a', source: 'crm', source_id: 'C-9',
                   created_at: datetime('2020-01-01T00:00:00Z'), updated_at: datetime('2020-01-01T00:00:00Z')})
CREATE (b:Profile {id: 'stale-b', source: 'ivr', source_id: 'call-4',
                   created_at: datetime('2020-01-02T00:00:00Z'), updated_at: datetime('2020-01-02T00:00:00Z')})
CREATE (a)-[:HAS_IDENTITY {raw: '1-800-555-0199', source: 'crm'}]->(:Identity {key: 'phone_number',
                                                                                 value: '1-800-555-0199'})
CREATE (b)-[:HAS_IDENTITY {raw: '(800) 555-0123', source: 'ivr'}]->(:Identity {key: 'phone_number',
                                                                                 value: '(800) 555-0123'})
"""


async def test_renormalize_deletes_a_stored_value_whose_normalized_form_was_erased_instead_of_re_creating_it(
    service: IdentityService, maintenance: MaintenanceRepository, driver: AsyncDriver, clock: Clock
) -> None:
    await driver.execute_query(STALE)
    erased = IdentityKey(PHONE, "+18005550199")
    await driver.execute_query("CREATE (:Suppression {hash: $hash})", hash=suppression_hash(KEY, erased))
    before = (await holdings(driver), await counts(driver))

    dry = await renormalize(maintenance, default_strategy(), erasure_key=KEY, now=clock(), dry_run=True)
    assert (dry.identities_folded, dry.suppressed) == (1, 1)
    assert (await holdings(driver), await counts(driver)) == before

    report = await renormalize(maintenance, default_strategy(), erasure_key=KEY, now=clock())
    assert (report.identities_folded, report.identities_created, report.suppressed) == (1, 1, 1)
    assert any("suppressed" in line and " 1 " in line for line in renormalize_summary(report))
    records, _, _ = await driver.execute_query(
        "MATCH (i:Identity {key: 'phone_number'}) RETURN i.value AS value ORDER BY value"
    )
    assert [r["value"] for r in records] == ["+18005550123"]  # neither the erased value nor its stale spelling
    assert (await service.resolve([(PHONE, "1-800-555-0199")])).status is ResolutionStatus.NOT_FOUND
    assert await holdings(driver) == {("ivr", "call-4", PHONE, "+18005550123", True)}
    kept = await service.resolve([(PHONE, "(800) 555-0123")])
    assert kept.customer is not None and [p.id for p in kept.customer.profiles] == ["stale-b"]

    again = await renormalize(maintenance, default_strategy(), erasure_key=KEY, now=clock())
    assert (again.identities_folded, again.suppressed) == (0, 0)
