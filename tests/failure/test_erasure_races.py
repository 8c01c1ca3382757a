"""Erasures racing with writes to the same customer, with the interleaving forced, so each race the randomized
concurrency test (test_concurrency_http.py) stumbles on is reproduced every time.

Two ways of forcing an interleaving, both on the real database:
- the use case runs on a repository that stops after one of its reads until the test lets it go on (a read the
  service makes before its write transaction, or the erasure's first read of its customer inside its transaction,
  before it holds a lock), while the test runs the competing operation to completion;
- a transaction of the test's own holds a write lock on a node, so the use case's transaction queues behind it, and the
  test commits a change to that node (a deletion, a new edge) while it waits, as a concurrent writer would.

What must hold is what holds in SOME serial order of the two operations: an upsert acknowledged before an erasure
commits belongs to the customer the erasure deletes (or, ordered after it, is refused as SUPPRESSED); a write to a
profile deleted meanwhile is NOT_FOUND; nothing is ever answered with an unexpected (INTERNAL) error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from neo4j import AsyncTransaction

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.domain.model import IdentityKey, ProfileInput, ResolutionStatus
from app.domain.strategy import default_strategy
from app.domain.suppression import suppression_hash
from app.errors import AppError, Conflict, NotFound, Suppressed
from app.services.identity import IdentityService
from app.services.ports import ProfileComponent, Snapshot
from tests.erasure_key import ERASURE_KEY
from tests.failure import privacy

pytestmark = [pytest.mark.neo4j, pytest.mark.failure, pytest.mark.timeout(90)]

PHONE = "+1 212 555 0147"
EMAIL = "race.subject@example.net"
OTHER_PHONE = "+1 212 555 0148"
KEY = ERASURE_KEY.encode()
WAIT_S = 20.0


class PausingRepository(Neo4jRepository):
    """The real repository, which stops after the named read until `release` is set."""

    def __init__(self, driver: AsyncDriver, database: str, pause_after: str) -> None:
        super().__init__(driver, token_key=b"test-token-key", database=database, timeout_s=30.0)
        self.pause_after = pause_after
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def _pause(self, name: str) -> None:
        # "first_read": whichever of the reads comes first.
        if self.pause_after in (name, "first_read") and not self.reached.is_set():
            self.reached.set()
            await asyncio.wait_for(self.release.wait(), WAIT_S)

    async def _component_in(self, tx: AsyncTransaction, profile_id: str, max_nodes: int) -> ProfileComponent | None:
        # The erasure's first read of its customer, inside its transaction and before it holds any lock.
        found = await super()._component_in(tx, profile_id, max_nodes)
        await self._pause("erasure_component")
        return found

    async def read_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> Snapshot:
        snapshot = await super().read_profiles(profile_ids, max_nodes=max_nodes, consistency=consistency)
        await self._pause("read_profiles")
        return snapshot


@pytest.fixture(autouse=True)
def _remember_values() -> None:
    privacy.remember([PHONE, EMAIL, OTHER_PHONE])


def service_on(repo: Neo4jRepository) -> IdentityService:
    return IdentityService(repo, default_strategy(), KEY)


@pytest.fixture
def service(driver: AsyncDriver, settings: Settings) -> IdentityService:
    return service_on(
        Neo4jRepository(driver, token_key=b"test-token-key", database=settings.neo4j_database, timeout_s=30.0)
    )


def pausing(driver: AsyncDriver, settings: Settings, after: str) -> tuple[PausingRepository, IdentityService]:
    repo = PausingRepository(driver, settings.neo4j_database, after)
    return repo, service_on(repo)


async def erase(service: IdentityService, profile_id: str) -> Any:
    return await service.erase(profile_id, request_id=f"race-{uuid.uuid4().hex[:12]}", reason="test", actor="t")


async def count(driver: AsyncDriver, query: str, **params: Any) -> int:
    records, _, _ = await driver.execute_query(query, params, routing_="r")
    return int(records[0][0])


async def assert_erased_value_gone_and_refused(service: IdentityService, driver: AsyncDriver) -> None:
    resolution = await service.resolve([("phone_number", PHONE)])
    assert resolution.status is ResolutionStatus.NOT_FOUND, "the erased phone number still resolves to a customer"
    assert await count(driver, "MATCH (i:Identity {key: 'phone_number', value: '+12125550147'}) RETURN count(i)") == 0
    with pytest.raises(Suppressed):
        await service.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="again"))


async def test_an_upsert_acknowledged_during_an_erasure_of_its_customer_is_erased_with_it(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    first = await service.upsert_profile(
        ProfileInput("crm", (("phone_number", PHONE), ("email_address", EMAIL)), source_id="C-1")
    )
    repo, erasing = pausing(driver, settings, "erasure_component")
    erasure = asyncio.create_task(erase(erasing, first.profile.id))
    await asyncio.wait_for(repo.reached.wait(), WAIT_S)

    # The IVR sees the same caller while the erasure is being planned; its write is acknowledged before the
    # erasure commits, so in any serial order it is part of the customer the erasure deletes.
    joined = await service.upsert_profile(ProfileInput("ivr", (("phone_number", PHONE),), source_id="I-1"))
    assert joined.customer.id == first.customer.id

    repo.release.set()
    await erasure

    assert await service.customer(joined.profile.id) is None, "the profile that joined the customer survived"
    await assert_erased_value_gone_and_refused(service, driver)


async def test_an_upsert_waiting_for_an_erasure_of_its_values_cannot_bring_them_back(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    first = await service.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    async with driver.session(database=settings.neo4j_database) as session:
        erasure = await session.begin_transaction()  # stands for an erasure holding the phone number's lock
        await erasure.run(
            "MATCH (i:Identity {key: 'phone_number', value: '+12125550147'}) SET i.last_seen = i.last_seen"
        )
        sync = asyncio.create_task(
            service.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="lagging-sync"))
        )
        await wait_until_blocked(driver)
        await erasure.run(
            "MATCH (p:Profile {id: $id})-[:HAS_IDENTITY]->(i:Identity) DETACH DELETE p, i "
            "CREATE (:Suppression {hash: $hash, at: datetime(), request_id: 'race'})",
            id=first.profile.id,
            hash=suppression_hash(KEY, IdentityKey("phone_number", "+12125550147")),
        )
        await erasure.commit()

    # Ordered after the erasure (it commits after it), the lagging sync must be refused.
    with pytest.raises(Suppressed):
        await sync
    await assert_erased_value_gone_and_refused(service, driver)


async def wait_until_blocked(driver: AsyncDriver) -> None:
    """Until some transaction waits for a lock."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        records, _, _ = await driver.execute_query(
            "SHOW TRANSACTIONS YIELD status WHERE status STARTS WITH 'Blocked' RETURN count(*) AS n"
        )
        if records[0]["n"]:
            return
        assert asyncio.get_running_loop().time() < deadline, "the use case's transaction never waited for the lock"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["profile_id", "source_id"])
async def test_a_write_to_a_profile_deleted_while_it_waited_for_the_lock_is_not_found(
    service: IdentityService, driver: AsyncDriver, settings: Settings, mode: str
) -> None:
    first = await service.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    pid = first.profile.id
    async with driver.session(database=settings.neo4j_database) as session:
        erasure = await session.begin_transaction()  # stands for an erasure holding the profile's lock
        await erasure.run("MATCH (p:Profile {id: $id}) SET p.version = p.version + 1", id=pid)
        if mode == "profile_id":
            item = ProfileInput("api", (("phone_number", OTHER_PHONE),), profile_id=pid)
        else:
            item = ProfileInput("crm", (("phone_number", OTHER_PHONE),), source_id="C-1")
        write = asyncio.create_task(service.upsert_profile(item))
        await wait_until_blocked(driver)
        await erasure.run(
            "MATCH (p:Profile {id: $id}) OPTIONAL MATCH (p)-[:HAS_IDENTITY]->(i) DETACH DELETE p, i", id=pid
        )
        await erasure.commit()

    if mode == "profile_id":
        with pytest.raises(NotFound):
            await write
    else:  # the record comes back as a new profile, with its identity
        result = await write
        assert result.profile.id != pid
        assert [(i.key, i.value) for i in result.profile.identities] == [("phone_number", "+12125550148")]
    orphans = "MATCH (i:Identity) WHERE NOT EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-() } RETURN count(i)"
    assert await count(driver, orphans) == 0


async def test_an_erasure_racing_with_a_new_holder_of_its_values_never_fails_with_an_unexpected_error(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    first = await service.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    async with driver.session(database=settings.neo4j_database) as session:
        upsert = await session.begin_transaction()  # stands for an upsert linking the same phone number
        await upsert.run(
            "MATCH (i:Identity {key: 'phone_number', value: '+12125550147'}) "
            "CREATE (p:Profile {id: 'joiner', source: 'ivr', source_id: 'I-9', created_at: datetime(), "
            "updated_at: datetime(), version: 1})-[:HAS_IDENTITY {raw: $raw, source: 'ivr', first_seen: datetime(), "
            "last_seen: datetime(), rule_version: 'test'}]->(i) SET i.last_seen = datetime()",
            raw=PHONE,
        )
        erasure = asyncio.create_task(erase(service, first.profile.id))
        await wait_until_blocked(driver)
        await upsert.commit()

    try:
        await erasure
    except AppError as error:  # a coded refusal the client can act on is acceptable
        assert error.code != "INTERNAL"
    # Whatever the erasure did, it did all of it or nothing: no value is left without a holder.
    orphans = "MATCH (i:Identity) WHERE NOT EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-() } RETURN count(i)"
    assert await count(driver, orphans) == 0


async def test_a_merge_whose_source_was_erased_meanwhile_is_refused_as_suppressed(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    source = await service.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    target = await service.upsert_profile(ProfileInput("ivr", (("phone_number", OTHER_PHONE),), source_id="I-1"))
    # The merge's first read of the customers, inside its transaction and before it holds a lock.
    repo, merging = pausing(driver, settings, "erasure_component")
    merge = asyncio.create_task(merging.merge_profiles(source.profile.id, target.profile.id, actor="t"))
    await asyncio.wait_for(repo.reached.wait(), WAIT_S)
    await erase(service, source.profile.id)
    repo.release.set()

    with pytest.raises(Suppressed):
        customer = await merge
        print("acknowledged merge; the target's customer holds", [p.id for p in customer.profiles])
    assert await count(driver, "MATCH ()-[m:MERGED_INTO]->() RETURN count(m)") == 0


async def test_a_merge_checks_for_conflicts_under_its_locks_so_a_value_added_meanwhile_is_seen(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    source = await service.upsert_profile(
        ProfileInput("crm", (("phone_number", PHONE), ("account_id", "ACCT-1")), source_id="C-1")
    )
    target = await service.upsert_profile(ProfileInput("ivr", (("phone_number", OTHER_PHONE),), source_id="I-1"))
    repo, merging = pausing(driver, settings, "first_read")
    merge = asyncio.create_task(merging.merge_profiles(source.profile.id, target.profile.id, actor="t"))
    await asyncio.wait_for(repo.reached.wait(), WAIT_S)
    # While the merge reads, the target's customer gains another account id (a second profile of it).
    await service.upsert_profile(
        ProfileInput("webchat", (("phone_number", OTHER_PHONE), ("account_id", "ACCT-2")), source_id="W-1")
    )
    repo.release.set()

    with pytest.raises(Conflict):
        await merge
    assert await count(driver, "MATCH ()-[m:MERGED_INTO]->() RETURN count(m)") == 0
