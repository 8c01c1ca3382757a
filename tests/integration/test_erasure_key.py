"""The database knows its erasure key (real Neo4j): the first writer records its fingerprint, a writer with another
key writes nothing, and `key rotate` re-keys the suppression list so that the new key refuses erased values and the
old key is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from app.cli.keys import rotate
from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.keystore import KeyStore
from app.db.maintenance import MaintenanceRepository
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.domain.changes import ACTOR_CLI, Audit
from app.domain.model import IdentityKey, ProfileInput
from app.domain.strategy import default_strategy
from app.domain.suppression import key_fingerprint, suppression_hash
from app.erasure_key import ErasureKey, StoredKey
from app.errors import ErasureKeyMismatch, Suppressed
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.erasure_key import ERASURE_KEY

pytestmark = pytest.mark.neo4j

OLD = ERASURE_KEY.encode()
NEW = b"the-new-erasure-key-of-the-rotation-test"
STRANGER = b"a-key-no-other-process-of-this-test-uses"
PHONE = "phone_number"
EMAIL = "email_address"


@pytest.fixture
async def clean(driver: AsyncDriver) -> AsyncIterator[AsyncDriver]:
    """The clean graph; the key node is removed afterwards too, so that tests after this one start without it."""
    yield driver
    await driver.execute_query("MATCH (k:ErasureKey) DETACH DELETE k")


def service_with(driver: AsyncDriver, settings: Settings, key: ErasureKey, clock: Clock) -> IdentityService:
    repo = Neo4jRepository(
        driver, token_key=token_key(key.key), database=settings.neo4j_database, timeout_s=30.0, erasure_key=key
    )
    return IdentityService(repo, default_strategy(), key, clock=clock)


async def checked(driver: AsyncDriver, settings: Settings, key: bytes, clock: Clock) -> IdentityService:
    """A service as a process builds it: its key checked against the database at start-up, as `serve` and the CLI
    do (a read: the first write records the key when the database has none); refused, it refuses every write."""
    erasure_key = ErasureKey(key)
    with contextlib.suppress(ErasureKeyMismatch):
        await KeyStore(driver).check(erasure_key, record=False)
    return service_with(driver, settings, erasure_key, clock)


async def key_nodes(driver: AsyncDriver) -> list[dict[str, object]]:
    records, _, _ = await driver.execute_query("MATCH (k:ErasureKey) RETURN properties(k) AS k")
    return [r["k"] for r in records]


async def profiles(driver: AsyncDriver) -> int:
    records, _, _ = await driver.execute_query("MATCH (p:Profile) RETURN count(p) AS n")
    return int(records[0]["n"])


async def test_the_first_writer_records_its_key_fingerprint_and_never_the_key(
    clean: AsyncDriver, settings: Settings, clock: Clock
) -> None:
    service = await checked(clean, settings, OLD, clock)
    await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    [node] = await key_nodes(clean)
    assert node["fingerprint"] == key_fingerprint(OLD)
    assert (node["state"], node["generation"]) == ("active", 1)
    assert not any(ERASURE_KEY in str(value) for value in node.values())


async def test_a_writer_with_another_key_is_refused_and_writes_nothing(
    clean: AsyncDriver, settings: Settings, clock: Clock
) -> None:
    await (await checked(clean, settings, OLD, clock)).upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1")
    )
    other = await checked(clean, settings, STRANGER, clock)
    with pytest.raises(ErasureKeyMismatch, match="key fingerprint mismatch"):
        await other.upsert_profile(ProfileInput("ivr", ((EMAIL, "jane@example.com"),), source_id="call-1"))
    maintenance = MaintenanceRepository(clean, timeout_s=30.0, erasure_key=ErasureKey(STRANGER))
    with pytest.raises(ErasureKeyMismatch):
        await maintenance.block_identities([IdentityKey(PHONE, "+14155552671")], now=clock())
    assert await profiles(clean) == 1
    records, _, _ = await clean.execute_query("MATCH (i:Identity) RETURN i.value AS v, i.blocked AS blocked")
    assert [(r["v"], r["blocked"]) for r in records] == [("+14155552671", False)]
    assert [n["fingerprint"] for n in await key_nodes(clean)] == [key_fingerprint(OLD)]


class CountingKey(ErasureKey):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.checks = 0

    def accept(self, stored: StoredKey | None) -> None:
        self.checks += 1
        super().accept(stored)


async def test_a_key_mismatch_is_not_retried(clean: AsyncDriver, settings: Settings, clock: Clock) -> None:
    await KeyStore(clean).check(ErasureKey(OLD), record=True)
    counting = CountingKey(STRANGER)
    repo = Neo4jRepository(clean, token_key=b"t" * 32, timeout_s=30.0, erasure_key=counting)
    with pytest.raises(ErasureKeyMismatch):
        await repo.unlink_identity("no-such-profile", IdentityKey(PHONE, "+14155552671"), audit=Audit(ACTOR_CLI))
    assert counting.checks == 1


async def test_of_two_writers_racing_on_an_empty_database_with_different_keys_one_wins(clean: AsyncDriver) -> None:
    store = KeyStore(clean)
    outcomes = await asyncio.gather(
        store.check(ErasureKey(OLD), record=True),
        store.check(ErasureKey(STRANGER), record=True),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ErasureKeyMismatch)]
    assert len(refused) == 1 and outcomes.count(None) == 1
    [node] = await key_nodes(clean)
    assert node["fingerprint"] in {key_fingerprint(OLD), key_fingerprint(STRANGER)}


async def test_after_a_rotation_the_new_key_refuses_an_erased_value_and_the_old_key_is_refused(
    clean: AsyncDriver, settings: Settings, clock: Clock
) -> None:
    before = await checked(clean, settings, OLD, clock)
    erased = await before.upsert_profile(
        ProfileInput("crm", ((PHONE, "+14155552671"), (EMAIL, "john.doe@example.com")), source_id="C-1")
    )
    await before.erase(erased.profile.id, request_id="gdpr-1", reason="opt-out", actor="test")
    records, _, _ = await clean.execute_query("MATCH (s:Suppression) RETURN s.hash AS h")
    old_hashes = {r["h"] for r in records}
    assert suppression_hash(OLD, IdentityKey(PHONE, "+14155552671")) in old_hashes

    done = await rotate(KeyStore(clean), OLD, NEW, page_size=1)
    assert (done.rekeyed, done.generation) == (len(old_hashes), 2)

    records, _, _ = await clean.execute_query("MATCH (s:Suppression) RETURN s.hash AS h")
    assert len(records) == len(old_hashes) and not {r["h"] for r in records} & old_hashes
    after = await checked(clean, settings, NEW, clock)
    with pytest.raises(Suppressed):
        await after.upsert_profile(ProfileInput("ivr", ((PHONE, "(415) 555-2671"),), source_id="call-9"))
    with pytest.raises(Suppressed):
        await after.upsert_profile(ProfileInput("webchat", ((EMAIL, "John.Doe@example.com"),)))
    for old_key_service in (before, await checked(clean, settings, OLD, clock)):
        with pytest.raises(ErasureKeyMismatch):
            await old_key_service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="c-2"))
    assert await profiles(clean) == 0
    stored = await after.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155550100"),), source_id="call-10"))
    assert stored.created


async def test_writes_are_refused_while_a_rotation_is_under_way_and_running_it_again_finishes_it(
    clean: AsyncDriver, settings: Settings, clock: Clock
) -> None:
    service = await checked(clean, settings, OLD, clock)
    erased = await service.upsert_profile(ProfileInput("crm", ((PHONE, "+14155552671"),), source_id="C-1"))
    await service.erase(erased.profile.id, request_id="gdpr-1", reason="opt-out", actor="test")
    store = KeyStore(clean)
    assert await store.begin_rotation(key_fingerprint(OLD), key_fingerprint(NEW))  # a rotation that stopped here
    for key in (OLD, NEW):
        with pytest.raises(ErasureKeyMismatch, match="being rotated"):
            await (await checked(clean, settings, key, clock)).upsert_profile(
                ProfileInput("ivr", ((PHONE, "+14155550100"),), source_id="call-1")
            )
    with pytest.raises(ErasureKeyMismatch, match="another rotation"):
        await rotate(store, OLD, STRANGER)
    done = await rotate(store, OLD, NEW)
    assert done.resumed and done.generation == 2
    with pytest.raises(Suppressed):
        await (await checked(clean, settings, NEW, clock)).upsert_profile(
            ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-2")
        )
    assert await profiles(clean) == 0


async def test_a_rotation_needs_the_database_s_key_and_a_key_never_used_before(clean: AsyncDriver) -> None:
    store = KeyStore(clean)
    await store.check(ErasureKey(OLD), record=True)
    with pytest.raises(ErasureKeyMismatch, match="--old-key-file"):
        await rotate(store, STRANGER, NEW)
    await rotate(store, OLD, NEW)
    with pytest.raises(Exception, match="retired"):
        await rotate(store, NEW, OLD)
    [node] = await key_nodes(clean)
    assert (node["fingerprint"], node["state"], node["generation"]) == (key_fingerprint(NEW), "active", 2)


async def test_a_suppression_list_older_than_key_fingerprints_refuses_writers_until_its_key_is_adopted(
    clean: AsyncDriver, settings: Settings, clock: Clock
) -> None:
    # A database upgraded from before fingerprints: an erasure's hash on the list, no key recorded.
    erased = suppression_hash(OLD, IdentityKey(EMAIL, "gone@example.com"))
    await clean.execute_query("CREATE (:Suppression {hash: $h, at: datetime(), request_id: 'old'})", h=erased)

    stranger = await checked(clean, settings, STRANGER, clock)
    with pytest.raises(ErasureKeyMismatch, match="key adopt"):  # not recorded as "the first writer's" key
        await stranger.upsert_profile(ProfileInput("ivr", ((EMAIL, "gone@example.com"),), source_id="call-1"))
    assert await key_nodes(clean) == [] and await profiles(clean) == 0

    assert await KeyStore(clean).adopt(ErasureKey(OLD)) is True
    assert await KeyStore(clean).adopt(ErasureKey(OLD)) is False
    with pytest.raises(ErasureKeyMismatch):
        await KeyStore(clean).adopt(ErasureKey(STRANGER))
    owner = await checked(clean, settings, OLD, clock)
    with pytest.raises(Suppressed):
        await owner.upsert_profile(ProfileInput("ivr", ((EMAIL, "gone@example.com"),), source_id="call-1"))
