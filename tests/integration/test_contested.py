"""Contested identities keep people apart (issue 19), on the real Neo4j: a value whose holders hold more account ids
than max_per_customer stops linking, on every path that changes holders or their values, and under concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from app.bulk.renormalize import renormalize
from app.db.driver import AsyncDriver
from app.db.maintenance import MaintenanceRepository
from app.db.repository import Neo4jRepository
from app.domain.fanout import contested_by
from app.domain.model import Assurance, IdentityKey, IgnoredReason, ProfileInput, ResolutionStatus
from app.domain.strategy import default_strategy
from app.errors import NotFound
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.erasure_key import ERASURE_KEY
from tests.integration.conftest import make_service

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"
ACCOUNT = "account_id"
LANDLINE = "+14155550100"
LIMITS = default_strategy().contest_limits
FANOUT = default_strategy().protections.max_profiles_per_identity

_STATE = """
MATCH (i:Identity)
OPTIONAL MATCH (i)<-[e:HAS_IDENTITY|OBSERVED]-(:Profile)
WITH i, collect(type(e)) AS types
RETURN i.key AS key, i.value AS value, coalesce(i.blocked, false) AS blocked,
       coalesce(i.saturated, false) AS saturated, coalesce(i.contested, false) AS contested,
       i.contested_key AS contested_key, i.contested_values AS contested_values, types,
       [(i)<-[:HAS_IDENTITY|OBSERVED]-(h:Profile) |
          [(h)-[:HAS_IDENTITY|OBSERVED]->(v:Identity) WHERE NOT coalesce(v.blocked, false) | [v.key, v.value]]] AS held
"""


async def violations(driver: AsyncDriver, limits: Mapping[str, int] = LIMITS) -> list[str]:
    """Every identity whose stored flag or edges disagree with the contested rule computed from the stored graph:
    contested exactly when its holders hold too many values (blocked and saturated ones aside), and then no
    HAS_IDENTITY edge; a linking one no OBSERVED edge."""
    records, _, _ = await driver.execute_query(_STATE)
    wrong: list[str] = []
    for r in records:
        name = f"{r['key']}={r['value']}"
        if r["saturated"] and r["contested"]:
            wrong.append(f"{name}: saturated and contested (saturation wins)")
        if not r["blocked"] and not r["saturated"] and len(r["types"]) > FANOUT:
            wrong.append(f"{name}: {len(r['types'])} holders, more than the fan-out limit, yet not saturated")
        if r["blocked"] or r["saturated"]:
            continue
        held: dict[str, set[str]] = {}
        for values in r["held"]:
            for key, value in values:
                held.setdefault(key, set()).add(value)
        expected = contested_by(r["key"], held, limits)
        if (expected is not None) != r["contested"]:
            wrong.append(f"{name}: contested={r['contested']}, the stored graph says {expected}")
        elif expected is not None and (r["contested_key"], r["contested_values"]) != (expected.key, expected.values):
            wrong.append(f"{name}: reason {r['contested_key']}/{r['contested_values']}, expected {expected}")
        wanted = "OBSERVED" if r["contested"] else "HAS_IDENTITY"
        if any(t != wanted for t in r["types"]):
            wrong.append(f"{name}: edges {sorted(r['types'])}, all should be {wanted}")
    return wrong


async def identity(driver: AsyncDriver, key: str, value: str) -> dict[str, Any]:
    records, _, _ = await driver.execute_query(
        "MATCH (i:Identity {key: $key, value: $value}) "
        "RETURN coalesce(i.contested, false) AS contested, i.contested_key AS contested_key, "
        "i.contested_values AS contested_values, coalesce(i.saturated, false) AS saturated, "
        "[(i)<-[e]-(p:Profile) | [p.id, type(e)]] AS edges",
        key=key,
        value=value,
    )
    return dict(records[0])


async def household(service: IdentityService) -> tuple[str, str]:
    """Ann and Bob share the landline; each has an account id of their own (and a mobile)."""
    ann = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, LANDLINE), (ACCOUNT, "ACCT-1"), (PHONE, "+14155550111")), source_id="ann")
    )
    bob = await service.upsert_profile(
        ProfileInput("crm", ((PHONE, LANDLINE), (ACCOUNT, "ACCT-2"), (PHONE, "+14155550122")), source_id="bob")
    )
    return ann.profile.id, bob.profile.id


async def test_a_landline_of_two_account_holders_resolves_ambiguous_with_both_as_candidates(
    service: IdentityService, driver: AsyncDriver
) -> None:
    ann, bob = await household(service)
    result = await service.resolve([(PHONE, "(415) 555-0100")])
    assert result.status is ResolutionStatus.AMBIGUOUS and result.customer is None
    assert sorted(c.id for c in result.candidates) == sorted([ann, bob])
    assert all(len(c.profiles) == 1 for c in result.candidates)
    assert [(i.value, i.reason) for i in result.ignored] == [(LANDLINE, IgnoredReason.CONTESTED)]
    assert result.matched_on == (IdentityKey(PHONE, LANDLINE),) and result.assurance is Assurance.NONE
    stored = await identity(driver, PHONE, LANDLINE)
    assert (stored["contested"], stored["contested_key"], stored["contested_values"]) == (True, ACCOUNT, 2)
    assert sorted(stored["edges"]) == sorted([[ann, "OBSERVED"], [bob, "OBSERVED"]])
    assert await violations(driver) == []


async def test_the_landline_with_an_account_id_is_found_for_the_account_holder(service: IdentityService) -> None:
    ann, bob = await household(service)
    for account, holder in (("ACCT-1", ann), ("ACCT-2", bob)):
        result = await service.resolve([(PHONE, LANDLINE), (ACCOUNT, account)])
        assert result.status is ResolutionStatus.FOUND and result.customer is not None
        assert [p.id for p in result.customer.profiles] == [holder]
        assert result.matched_on == (IdentityKey(ACCOUNT, account),) and result.assurance is Assurance.STRONG
        assert [i.reason for i in result.ignored] == [IgnoredReason.CONTESTED]
    mobile = await service.resolve([(PHONE, "+14155550111")])
    assert mobile.status is ResolutionStatus.FOUND and mobile.customer is not None
    assert [p.id for p in mobile.customer.profiles] == [ann]


async def test_the_landline_with_a_strangers_account_id_is_ambiguous_not_the_stranger(
    service: IdentityService,
) -> None:
    """The account id names Carol, who does not hold the landline: the caller is not shown as Carol."""
    ann, bob = await household(service)
    carol = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-3"),), source_id="carol"))
    result = await service.resolve([(PHONE, LANDLINE), (ACCOUNT, "ACCT-3")])
    assert result.status is ResolutionStatus.AMBIGUOUS and result.customer is None
    assert sorted(c.id for c in result.candidates) == sorted([ann, bob, carol.profile.id])
    assert result.assurance is Assurance.NONE


async def test_accounts_arriving_after_the_landline_linked_the_household_split_it(
    service: IdentityService, driver: AsyncDriver
) -> None:
    ann = await service.upsert_profile(ProfileInput("crm", ((PHONE, LANDLINE),), source_id="ann"))
    bob = await service.upsert_profile(ProfileInput("crm", ((PHONE, LANDLINE),), source_id="bob"))
    assert bob.customer.id == ann.customer.id  # linked by the landline: nothing tells them apart yet
    await service.upsert_profile(ProfileInput("billing", ((ACCOUNT, "ACCT-1"),), source_id="ann"))
    await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-1"),), source_id="ann"))
    one_account = await service.resolve([(PHONE, LANDLINE)])
    assert one_account.status is ResolutionStatus.FOUND  # one account id among the holders: still one customer
    await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="bob"))
    split = await service.resolve([(PHONE, LANDLINE)])
    assert split.status is ResolutionStatus.AMBIGUOUS
    assert await violations(driver) == []


async def test_a_third_profile_of_one_member_joining_later_keeps_them_apart(
    service: IdentityService, driver: AsyncDriver
) -> None:
    ann, bob = await household(service)
    web = await service.upsert_profile(
        ProfileInput("web", ((PHONE, LANDLINE), (ACCOUNT, "ACCT-1"), (EMAIL, "ann@example.com")), source_id="w-1")
    )
    assert sorted(p.id for p in web.customer.profiles) == sorted([ann, web.profile.id])  # through ACCT-1 only
    customer = await service.customer(bob)
    assert customer is not None and [p.id for p in customer.profiles] == [bob]
    stored = await identity(driver, PHONE, LANDLINE)
    assert stored["contested"] and {t for _, t in stored["edges"]} == {"OBSERVED"} and len(stored["edges"]) == 3
    assert await violations(driver) == []


async def test_unlinking_one_members_account_makes_the_landline_link_again(
    service: IdentityService, driver: AsyncDriver
) -> None:
    ann, bob = await household(service)
    await service.unlink_identity(bob, ACCOUNT, "ACCT-2", actor="steward")
    stored = await identity(driver, PHONE, LANDLINE)
    assert not stored["contested"] and stored["contested_key"] is None
    assert sorted(stored["edges"]) == sorted([[ann, "HAS_IDENTITY"], [bob, "HAS_IDENTITY"]])
    result = await service.resolve([(PHONE, LANDLINE)])
    assert result.status is ResolutionStatus.FOUND and result.customer is not None
    assert sorted(p.id for p in result.customer.profiles) == sorted([ann, bob])
    assert await violations(driver) == []
    # The change log says the landline links again, naming its holders, after the unlink (docs/changes.md).
    records, _, _ = await driver.execute_query(
        "MATCH (c:Change) WHERE c.type IN ['IDENTITY_UNLINKED', 'IDENTITY_RELEASED'] "
        "RETURN c.type AS type, c.profile_ids AS ids ORDER BY c.seq"
    )
    assert [(r["type"], sorted(r["ids"])) for r in records] == [
        ("IDENTITY_UNLINKED", [bob]),
        ("IDENTITY_RELEASED", sorted([ann, bob])),
    ]


async def test_a_contested_value_held_by_more_profiles_than_the_fan_out_limit_is_saturated_instead(
    service: IdentityService, driver: AsyncDriver
) -> None:
    """Saturation wins over the contest whatever came first, as `idgraph import` decides it: a contested value
    keeps no unbounded set of holders to re-read on every write."""
    await household(service)
    callers = [ProfileInput("ivr", ((PHONE, LANDLINE),), source_id=f"call-{n}") for n in range(FANOUT)]
    await service.upsert_profiles(callers)
    stored = await identity(driver, PHONE, LANDLINE)
    assert stored["saturated"] and not stored["contested"] and stored["contested_key"] is None
    assert {t for _, t in stored["edges"]} == {"OBSERVED"} and len(stored["edges"]) == FANOUT + 2
    assert await violations(driver) == []


async def test_unlinking_the_shared_value_from_one_holder_releases_it(
    service: IdentityService, driver: AsyncDriver
) -> None:
    ann, bob = await household(service)
    carol = await service.upsert_profile(ProfileInput("ivr", ((PHONE, LANDLINE),), source_id="call-1"))
    await service.unlink_identity(bob, PHONE, LANDLINE, actor="steward")
    result = await service.resolve([(PHONE, LANDLINE)])
    assert result.status is ResolutionStatus.FOUND and result.customer is not None
    assert sorted(p.id for p in result.customer.profiles) == sorted([ann, carol.profile.id])
    assert await violations(driver) == []


async def test_erasing_one_member_re_evaluates_the_values_the_others_keep(
    service: IdentityService, driver: AsyncDriver
) -> None:
    ann, bob = await household(service)
    carol = await service.upsert_profile(ProfileInput("ivr", ((PHONE, LANDLINE),), source_id="call-1"))
    receipt = await service.erase(bob, request_id="req-19", reason="asked", actor="steward")
    assert receipt.profiles_deleted == 1  # the contested landline did not make Bob's customer the household's
    stored = await identity(driver, PHONE, LANDLINE)
    assert not stored["contested"] and {t for _, t in stored["edges"]} == {"HAS_IDENTITY"}
    result = await service.resolve([(PHONE, LANDLINE)])
    assert result.customer is not None
    assert sorted(p.id for p in result.customer.profiles) == sorted([ann, carol.profile.id])
    assert await violations(driver) == []


async def test_renormalize_contests_a_value_its_fold_gives_two_account_holders(
    service: IdentityService, driver: AsyncDriver, clock: Clock
) -> None:
    ann = await service.upsert_profile(ProfileInput("crm", ((PHONE, LANDLINE), (ACCOUNT, "ACCT-1")), source_id="a"))
    bob = await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, "ACCT-2"),), source_id="b"))
    # A legacy, unnormalized copy of the landline on Bob's profile, as written before normalization existed.
    await driver.execute_query(
        "MATCH (b:Profile {id: $bob}) "
        "CREATE (b)-[:HAS_IDENTITY {raw: '(415) 555-0100', source: 'crm', first_seen: datetime(), "
        "last_seen: datetime()}]->(:Identity {key: 'phone_number', value: '(415) 555-0100'})",
        bob=bob.profile.id,
    )
    report = await renormalize(
        MaintenanceRepository(driver, timeout_s=60.0), default_strategy(), erasure_key=ERASURE_KEY.encode(), now=clock()
    )
    assert (report.identities_folded, report.contested) == (1, 1)
    result = await service.resolve([(PHONE, LANDLINE)])
    assert result.status is ResolutionStatus.AMBIGUOUS
    assert sorted(c.id for c in result.candidates) == sorted([ann.profile.id, bob.profile.id])
    assert await violations(driver) == []


async def test_an_account_id_blocked_by_renormalize_no_longer_contests(
    service: IdentityService, driver: AsyncDriver, clock: Clock
) -> None:
    ann, bob = await household(service)
    strategy = default_strategy()
    listed = replace(strategy.protections, blocked_values=strategy.protections.blocked_values | {"ACCT-2"})
    report = await renormalize(
        MaintenanceRepository(driver, timeout_s=60.0),
        replace(strategy, protections=listed),
        erasure_key=ERASURE_KEY.encode(),
        now=clock(),
    )
    assert report.blocked == 1
    stored = await identity(driver, PHONE, LANDLINE)
    assert not stored["contested"] and {t for _, t in stored["edges"]} == {"HAS_IDENTITY"}
    result = await service.resolve([(PHONE, LANDLINE)])
    assert result.customer is not None and sorted(p.id for p in result.customer.profiles) == sorted([ann, bob])
    assert await violations(driver) == []


async def test_with_the_rule_off_the_landline_links_the_household_as_before(
    repo: Neo4jRepository, clock: Clock, driver: AsyncDriver
) -> None:
    strategy = default_strategy()
    off = replace(strategy, protections=replace(strategy.protections, contested_identities=False))
    service = make_service(repo, clock, off)
    ann, bob = await household(service)
    result = await service.resolve([(PHONE, LANDLINE)])
    assert result.status is ResolutionStatus.FOUND and result.customer is not None
    assert sorted(p.id for p in result.customer.profiles) == sorted([ann, bob])
    assert not (await identity(driver, PHONE, LANDLINE))["contested"]
    assert await violations(driver, limits={}) == []


async def test_switching_the_rule_off_releases_a_contested_value_at_its_next_change(
    service: IdentityService, repo: Neo4jRepository, clock: Clock, driver: AsyncDriver
) -> None:
    ann, bob = await household(service)
    strategy = default_strategy()
    off = make_service(
        repo, clock, replace(strategy, protections=replace(strategy.protections, contested_identities=False))
    )
    assert (await identity(driver, PHONE, LANDLINE))["contested"]  # nothing revisited by the switch itself
    await off.upsert_profile(ProfileInput("crm", (), source_id="ann", attributes={"tier": "Gold"}))
    stored = await identity(driver, PHONE, LANDLINE)
    assert not stored["contested"] and {t for _, t in stored["edges"]} == {"HAS_IDENTITY"}
    customer = await off.customer(ann)
    assert customer is not None and sorted(p.id for p in customer.profiles) == sorted([ann, bob])
    assert await violations(driver, limits={}) == []


async def test_concurrent_writers_never_leave_a_contested_value_linking(
    service: IdentityService, driver: AsyncDriver
) -> None:
    """Holders of one landline get account ids (and lose some) from concurrent writers, each call its own
    transaction, in a random order; after each round every identity agrees with the rule computed from what is
    stored (no value links while contested, none stays contested without cause)."""
    rng = random.Random(19)
    members = {}
    for n in range(6):
        written = await service.upsert_profile(ProfileInput("crm", ((PHONE, LANDLINE),), source_id=f"m-{n}"))
        members[f"m-{n}"] = written.profile.id
    given: list[tuple[str, str]] = []  # (profile id, account id) written in an earlier round
    for round_ in range(5):

        async def give(source_id: str, account: str) -> None:
            await service.upsert_profile(ProfileInput("crm", ((ACCOUNT, account),), source_id=source_id))

        async def newcomer(source_id: str, account: str) -> None:
            await service.upsert_profile(
                ProfileInput("ivr", ((PHONE, LANDLINE), (ACCOUNT, account)), source_id=source_id)
            )

        async def take(profile_id: str, account: str) -> None:
            # A concurrent give of the same pair may not have committed yet: then there is nothing to take.
            with contextlib.suppress(NotFound):
                await service.unlink_identity(profile_id, ACCOUNT, account, actor="steward")

        tasks = []
        for source_id, profile_id in members.items():
            if rng.random() < 0.6:
                account = f"ACCT-{rng.randrange(4)}"
                tasks.append(give(source_id, account))
                given.append((profile_id, account))
        tasks.append(newcomer(f"c-{round_}", f"ACCT-{rng.randrange(4)}"))
        for profile_id, account in rng.sample(given, min(len(given), 2)):
            tasks.append(take(profile_id, account))
        rng.shuffle(tasks)
        await asyncio.gather(*tasks)
        assert await violations(driver) == [], f"round {round_}"
