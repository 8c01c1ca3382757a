"""An erasure locks its whole customer before it plans: a profile that joins the customer at any moment before those
locks are all held is erased with it, and the values it shared are suppressed. The joins are forced between the
erasure's reads of its customer, on the real database."""

from __future__ import annotations

import asyncio

import pytest
from neo4j import AsyncTransaction

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.domain.model import ProfileInput, ResolutionStatus
from app.domain.strategy import default_strategy
from app.errors import Conflict, Suppressed
from app.services.identity import IdentityService
from app.services.ports import ProfileComponent
from tests.erasure_key import ERASURE_KEY
from tests.failure import privacy

pytestmark = [pytest.mark.neo4j, pytest.mark.failure, pytest.mark.timeout(90)]

PHONE = "+1 212 555 0161"
JOIN_PHONE = "+1 212 555 0162"
KEY = ERASURE_KEY.encode()
WAIT_S = 20.0


class SteppingRepository(Neo4jRepository):
    """The real repository, which stops after each of the erasure's reads of its customer until the test lets it
    go on (`steps[n]` is set by the test after read n, counting from 0)."""

    def __init__(self, driver: AsyncDriver, database: str, pauses: int) -> None:
        super().__init__(driver, token_key=b"test-token-key", database=database, timeout_s=30.0)
        self.reads = 0
        self.reached = [asyncio.Event() for _ in range(pauses)]
        self.steps = [asyncio.Event() for _ in range(pauses)]

    async def _component_in(self, tx: AsyncTransaction, profile_id: str, max_nodes: int) -> ProfileComponent | None:
        found = await super()._component_in(tx, profile_id, max_nodes)
        n = self.reads
        self.reads += 1
        if n < len(self.steps):
            self.reached[n].set()
            await asyncio.wait_for(self.steps[n].wait(), WAIT_S)
        return found


def repository(driver: AsyncDriver, settings: Settings) -> Neo4jRepository:
    return Neo4jRepository(driver, token_key=b"test-token-key", database=settings.neo4j_database)


@pytest.fixture(autouse=True)
def _remember_values() -> None:
    privacy.remember([PHONE, JOIN_PHONE])


async def test_a_profile_joining_between_the_erasures_later_reads_and_locks_is_erased_and_its_values_suppressed(
    driver: AsyncDriver, settings: Settings
) -> None:
    plain = IdentityService(repository(driver, settings), default_strategy(), KEY)
    first = await plain.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    repo = SteppingRepository(driver, settings.neo4j_database, pauses=2)
    erasing = IdentityService(repo, default_strategy(), KEY)
    erasure = asyncio.create_task(erasing.erase(first.profile.id, request_id="locks-1", reason="test", actor="t"))

    # After the first read (the customer is one profile, nothing locked yet): a second profile joins through the
    # phone number, bringing a number of its own.
    await asyncio.wait_for(repo.reached[0].wait(), WAIT_S)
    second = await plain.upsert_profile(
        ProfileInput("ivr", (("phone_number", PHONE), ("phone_number", JOIN_PHONE)), source_id="I-1")
    )
    repo.steps[0].set()
    # After the second read (it found the second profile, not locked yet): a third joins through that second number.
    await asyncio.wait_for(repo.reached[1].wait(), WAIT_S)
    third = await plain.upsert_profile(ProfileInput("webchat", (("phone_number", JOIN_PHONE),), source_id="W-1"))
    repo.steps[1].set()
    receipt = await erasure

    assert receipt.profiles_deleted == 3, "a profile that joined before the erasure held its locks escaped it"
    for profile in (first, second, third):
        assert await plain.customer(profile.profile.id) is None
    assert (await plain.resolve([("phone_number", JOIN_PHONE)])).status is ResolutionStatus.NOT_FOUND
    with pytest.raises(Suppressed):
        await plain.upsert_profile(ProfileInput("sms", (("phone_number", JOIN_PHONE),), source_id="S-1"))


async def test_a_profile_that_leaves_the_customer_while_the_erasure_locks_it_is_not_erased(
    driver: AsyncDriver, settings: Settings
) -> None:
    plain = IdentityService(repository(driver, settings), default_strategy(), KEY)
    first = await plain.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    other = await plain.upsert_profile(
        ProfileInput("ivr", (("phone_number", PHONE), ("phone_number", JOIN_PHONE)), source_id="I-1")
    )
    repo = SteppingRepository(driver, settings.neo4j_database, pauses=1)
    erasure = asyncio.create_task(
        IdentityService(repo, default_strategy(), KEY).erase(
            first.profile.id, request_id="locks-2", reason="t", actor="t"
        )
    )
    # After the first read (the customer is both profiles): a steward unlinks the shared number from the second.
    await asyncio.wait_for(repo.reached[0].wait(), WAIT_S)
    await plain.unlink_identity(other.profile.id, "phone_number", PHONE, actor="steward")
    repo.steps[0].set()
    receipt = await erasure

    assert receipt.profiles_deleted == 1
    kept = await plain.customer(other.profile.id)
    assert kept is not None, "the erasure deleted a profile that was no longer part of the customer"
    assert [i.value for i in kept.identities] == ["+12125550162"]


async def test_two_erasures_racing_with_one_request_id_erase_one_customer_and_refuse_the_other(
    driver: AsyncDriver, settings: Settings
) -> None:
    plain = IdentityService(repository(driver, settings), default_strategy(), KEY)
    a = await plain.upsert_profile(ProfileInput("crm", (("phone_number", PHONE),), source_id="C-1"))
    b = await plain.upsert_profile(ProfileInput("crm", (("phone_number", JOIN_PHONE),), source_id="C-2"))
    repo = SteppingRepository(driver, settings.neo4j_database, pauses=1)
    # The first erasure has looked for a receipt of the request id (none yet) and read its customer when it stops.
    first = asyncio.create_task(
        IdentityService(repo, default_strategy(), KEY).erase(a.profile.id, request_id="dsr-9", reason="t", actor="t")
    )
    await asyncio.wait_for(repo.reached[0].wait(), WAIT_S)
    second = await plain.erase(b.profile.id, request_id="dsr-9", reason="t", actor="t")
    repo.steps[0].set()

    with pytest.raises(Conflict):
        await first
    assert second.profiles_deleted == 1
    assert await plain.customer(a.profile.id) is not None, "the refused erasure deleted its customer anyway"
    assert (await plain.resolve([("phone_number", PHONE)])).status is ResolutionStatus.FOUND
