"""The CRM webhook's replay records on the real Neo4j: one claim per event id, across replicas (any number of
concurrent claimers), for the replay window only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver, create_driver
from app.db.webhook_events import WebhookEventRepository

pytestmark = pytest.mark.neo4j

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


@pytest.fixture
def records(driver: AsyncDriver, settings: Settings) -> WebhookEventRepository:
    return WebhookEventRepository(driver, database=settings.neo4j_database, timeout_s=30.0)


async def stored(driver: AsyncDriver) -> list[str]:
    rows, _, _ = await driver.execute_query("MATCH (e:WebhookEvent) RETURN e.event_id AS id ORDER BY id")
    return [r["id"] for r in rows]


async def test_a_second_claim_of_an_event_is_refused(records: WebhookEventRepository) -> None:
    first = await records.claim("evt-1", now=NOW, expired_before=NOW - WINDOW)
    second = await records.claim(
        "evt-1", now=NOW + timedelta(seconds=5), expired_before=NOW + timedelta(seconds=5) - WINDOW
    )
    other = await records.claim("evt-2", now=NOW, expired_before=NOW - WINDOW)
    assert (first, second, other) == (NOW, None, NOW)


async def test_of_concurrent_claims_by_separate_replicas_exactly_one_wins(
    settings: Settings, driver: AsyncDriver
) -> None:
    replicas = [create_driver(settings) for _ in range(4)]  # a connection pool each, as separate processes have
    try:
        stores = [WebhookEventRepository(d, database=settings.neo4j_database, timeout_s=30.0) for d in replicas]
        claims = await asyncio.gather(
            *(s.claim("evt-race", now=NOW, expired_before=NOW - WINDOW) for s in stores for _ in range(3))
        )
    finally:
        for d in replicas:
            await d.close()
    assert sum(1 for c in claims if c is not None) == 1
    assert await stored(driver) == ["evt-race"]


async def test_a_record_older_than_the_replay_window_is_ignored(records: WebhookEventRepository) -> None:
    await records.claim("evt-3", now=NOW, expired_before=NOW - WINDOW)
    later = NOW + WINDOW + timedelta(seconds=1)
    assert await records.claim("evt-3", now=later, expired_before=later - WINDOW) == later
    assert await records.claim("evt-3", now=later, expired_before=later - WINDOW) is None


async def test_a_released_claim_lets_a_redelivery_be_decided_afresh(records: WebhookEventRepository) -> None:
    claimed = await records.claim("evt-4", now=NOW, expired_before=NOW - WINDOW)
    assert claimed is not None
    assert await records.release("evt-4", claimed_at=claimed)
    assert await records.claim("evt-4", now=NOW, expired_before=NOW - WINDOW) == NOW


async def test_releasing_an_old_claim_keeps_the_record_of_a_newer_one(
    records: WebhookEventRepository, driver: AsyncDriver
) -> None:
    await records.claim("evt-5", now=NOW, expired_before=NOW - WINDOW)
    later = NOW + 2 * WINDOW
    await records.claim("evt-5", now=later, expired_before=later - WINDOW)  # took the expired record over
    assert not await records.release("evt-5", claimed_at=NOW)
    assert await stored(driver) == ["evt-5"]


async def test_expired_records_are_cleaned_up(records: WebhookEventRepository, driver: AsyncDriver) -> None:
    for n in range(3):
        await records.claim(f"old-{n}", now=NOW, expired_before=NOW - WINDOW)
    later = NOW + 2 * WINDOW
    await records.claim("fresh", now=later, expired_before=later - WINDOW)
    assert await records.delete_expired(expired_before=later - WINDOW, limit=2) == 2
    assert await records.delete_expired(expired_before=later - WINDOW) == 1
    assert await stored(driver) == ["fresh"]
