"""Consistency tokens are signed by the service: a replica sharing the erasure key honours another's tokens, and a
token the service did not issue is refused at once (a made-up bookmark would make the read wait for a transaction
that never comes)."""

from __future__ import annotations

import base64
import json

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.domain.model import ProfileInput, ResolutionStatus
from app.domain.strategy import default_strategy
from app.errors import InvalidInput
from app.services.identity import IdentityService
from tests.erasure_key import ERASURE_KEY

pytestmark = pytest.mark.neo4j

PHONE = ("phone_number", "+14155552671")
NOT_ISSUED = "consistencyToken is not a token this service issued"


def replica(driver: AsyncDriver, settings: Settings, erasure_key: bytes) -> IdentityService:
    """A service as another `idgraph serve` process on the same database would build it, with the token key derived
    from `erasure_key`. (Its suppression hashes use the test suite's erasure key: the database refuses writers with
    another one.)"""
    repo = Neo4jRepository(driver, token_key=token_key(erasure_key), database=settings.neo4j_database, timeout_s=30.0)
    return IdentityService(repo, default_strategy(), ERASURE_KEY.encode())


async def _future_bookmark(driver: AsyncDriver, settings: Settings) -> str:
    """A well-formed bookmark of this database naming a transaction far in its future."""
    async with driver.session(database=settings.neo4j_database) as session:
        await (await session.run("CREATE (:Scratch)")).consume()
        real = (await session.last_bookmarks()).raw_values
    prefix, _, body = next(iter(real)).partition(":")
    raw = base64.b64decode(body + "=" * (-len(body) % 4))
    # [database id (16 bytes), transaction id, []] in PackStream: keep the id, name transaction 2^31-1.
    forged = raw[:19] + b"\xca" + (2**31 - 1).to_bytes(4, "big") + b"\x90"
    return f"{prefix}:{base64.b64encode(forged).decode()}"


async def test_a_token_issued_by_one_replica_is_honoured_by_another_with_the_same_key(
    driver: AsyncDriver, settings: Settings
) -> None:
    written = await replica(driver, settings, b"shared-key").upsert_profile(
        ProfileInput("crm", (PHONE,), source_id="C-1")
    )
    other = replica(driver, settings, b"shared-key")
    resolution = await other.resolve([PHONE], consistency=written.consistency_token)
    assert resolution.status is ResolutionStatus.FOUND
    customer = await other.customer(written.profile.id, consistency=written.consistency_token)
    assert customer is not None and customer.id == written.profile.id


async def test_a_made_up_bookmark_is_refused_as_invalid_input_without_waiting_for_it(
    driver: AsyncDriver, settings: Settings
) -> None:
    service = replica(driver, settings, b"shared-key")
    await service.upsert_profile(ProfileInput("crm", (PHONE,), source_id="C-1"))
    bookmark = await _future_bookmark(driver, settings)
    forged = base64.urlsafe_b64encode(json.dumps([bookmark]).encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput, match=NOT_ISSUED):
        await service.resolve([PHONE], consistency=forged)
    signature = base64.urlsafe_b64encode(b"\0" * 32).decode().rstrip("=")
    with pytest.raises(InvalidInput, match=NOT_ISSUED):
        await service.resolve([PHONE], consistency=f"{forged}.{signature}")


async def test_a_token_signed_with_another_key_is_refused(driver: AsyncDriver, settings: Settings) -> None:
    written = await replica(driver, settings, b"one-key").upsert_profile(ProfileInput("crm", (PHONE,), source_id="C-1"))
    with pytest.raises(InvalidInput, match=NOT_ISSUED):
        await replica(driver, settings, b"another-key").resolve([PHONE], consistency=written.consistency_token)
