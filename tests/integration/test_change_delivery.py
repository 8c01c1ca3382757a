"""Outbound change delivery on the real Neo4j: the lease, the fenced cursor and parked batches (cypher/*change_*),
a delivery of real events to a local receiver that fails the first attempts, and `idgraph changes --parked` /
`--redeliver`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.bulk.delivery import ChangeDeliverer
from app.bulk.endpoint import WebhookEndpoint
from app.cli import main as cli
from app.config import Settings
from app.db.delivery import DeliveryRepository
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.db.retention import RetentionRepository
from app.domain.delivery import Delivery, DeliveryState, ParkedBatch
from app.domain.model import ProfileInput
from app.services.identity import IdentityService
from tests.change_receiver import SECRET, ChangeReceiver, in_order, overlapping_in_time
from tests.erasure_key import ERASURE_KEY

pytestmark = pytest.mark.neo4j

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
WAIT_S = 60.0


@pytest.fixture
def store(driver: AsyncDriver) -> DeliveryRepository:
    return DeliveryRepository(driver, timeout_s=30.0)


async def until(what: str, check: Callable[[], Awaitable[bool] | bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        done = check()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S:g}s"
        await asyncio.sleep(0.05)


async def make_events(service: IdentityService, count: int) -> None:
    for i in range(count):
        await service.upsert_profile(ProfileInput("crm", (("email_address", f"d{i}@example.com"),), source_id=f"D{i}"))


async def all_seqs(driver: AsyncDriver) -> list[int]:
    records, _, _ = await driver.execute_query("MATCH (c:Change) RETURN c.seq AS seq ORDER BY seq")
    return [int(r["seq"]) for r in records]


def fast(url: str, **changes: Any) -> Delivery:
    settings: dict[str, Any] = dict(batch_size=3, max_attempts=8, timeout_s=5.0, backoff_s=0.01, poll_s=0.05)
    settings.update(changes)
    return Delivery(url, SECRET, lease_s=30.0, **settings)


def worker(store: DeliveryRepository, repo: Neo4jRepository, delivery: Delivery, replica: str) -> ChangeDeliverer:
    endpoint = WebhookEndpoint(delivery.url, delivery.secret, timeout_s=delivery.timeout_s)
    return ChangeDeliverer(store, repo, endpoint, delivery, replica=replica)


async def test_one_replica_holds_the_delivery_lease_apart_from_retentions(
    store: DeliveryRepository, driver: AsyncDriver
) -> None:
    assert (await store.acquire_lease("a", now=NOW, expires_at=NOW + LEASE))[0]
    assert not (await store.acquire_lease("b", now=NOW + timedelta(seconds=1), expires_at=NOW + 2 * LEASE))[0]
    retention = RetentionRepository(driver, timeout_s=30.0)
    assert (await retention.acquire_lease("b", now=NOW, expires_at=NOW + LEASE))[0]  # another lease
    assert await store.renew_lease("a", expires_at=NOW + 2 * LEASE)
    assert not await store.renew_lease("b", expires_at=NOW + 2 * LEASE)
    assert (await store.acquire_lease("b", now=NOW + 2 * LEASE, expires_at=NOW + 3 * LEASE))[0]  # expired: taken
    assert not await store.renew_lease("a", expires_at=NOW + 4 * LEASE)
    assert await store.release_lease("b", now=NOW + 2 * LEASE)
    assert (await store.acquire_lease("a", now=NOW + 2 * LEASE, expires_at=NOW + 3 * LEASE))[0]


async def test_the_cursor_moves_only_for_the_lease_holder_and_never_back(store: DeliveryRepository) -> None:
    assert (await store.state()).delivered_seq == 0
    assert not await store.advance("a", now=NOW, seq=5)  # nobody holds the lease yet
    await store.acquire_lease("a", now=NOW, expires_at=NOW + LEASE)
    assert not await store.advance("b", now=NOW, seq=5)
    assert await store.advance("a", now=NOW, seq=5)
    assert await store.advance("a", now=NOW, seq=3)
    assert (await store.state()).delivered_seq == 5
    assert not await store.advance("a", now=NOW + LEASE, seq=9)  # expired
    assert (await store.state()).delivered_seq == 5


async def test_a_parked_batch_moves_the_cursor_past_it_and_is_settled_by_redelivery(
    store: DeliveryRepository, driver: AsyncDriver
) -> None:
    batch = ParkedBatch(4, 6, 3, 8, "HTTP_503", NOW)
    assert not await store.park("a", batch)  # fenced like the cursor
    assert await store.parked() == [] and (await store.state()).delivered_seq == 0
    await store.acquire_lease("a", now=NOW, expires_at=NOW + LEASE)
    assert await store.park("a", batch)
    assert await store.park("a", ParkedBatch(7, 9, 2, 8, "TIMEOUT", NOW))
    assert await store.state() == DeliveryState(delivered_seq=9, parked=2)
    assert [b.id for b in await store.parked()] == ["4-6", "7-9"]
    assert await store.parked("4-6") == [batch]

    later = NOW + timedelta(minutes=1)
    assert await store.settle(batch, error="CONNECTION_REFUSED", now=later)
    assert await store.parked("4-6") == [ParkedBatch(4, 6, 3, 9, "CONNECTION_REFUSED", NOW, later)]
    assert await store.settle(batch, error=None, now=later)
    assert [b.id for b in await store.parked()] == ["7-9"]
    assert not await store.settle(batch, error=None, now=later)  # gone
    records, _, _ = await driver.execute_query("MATCH (b:ParkedChangeBatch) RETURN keys(b) AS keys")
    assert set(records[0]["keys"]) <= {"id", "first_seq", "last_seq", "events", "attempts", "last_error", "parked_at"}


async def test_every_event_arrives_in_order_signed_although_the_first_attempts_fail(
    store: DeliveryRepository, repo: Neo4jRepository, service: IdentityService, driver: AsyncDriver
) -> None:
    await make_events(service, 8)
    receiver = ChangeReceiver(refuse=lambda n: 503 if n <= 3 else None)
    with receiver.running():
        deliverer = worker(store, repo, fast(receiver.url), "r1")
        deliverer.start()
        try:
            seqs = await all_seqs(driver)
            assert len(seqs) >= 8
            await until("every event accepted", lambda: receiver.cursors_accepted() >= set(seqs))
            await make_events(service, 2)  # new events after it caught up go too
            seqs = await all_seqs(driver)
            await until("the new events accepted", lambda: receiver.cursors_accepted() >= set(seqs))
        finally:
            await deliverer.stop()
    received = receiver.received
    assert [r.status for r in received[:3]] == [503] * 3 and received[0].cursors == received[3].cursors
    assert all(r.signed for r in received) and in_order(received)
    accepted = [c for r in receiver.accepted() for c in r.cursors]
    assert accepted == seqs  # in cursor order, each once: nothing failed after the first three attempts
    assert overlapping_in_time(received) == []
    assert (await store.state()).delivered_seq == seqs[-1]
    event = received[-1].events[-1]
    assert set(event) == {
        "cursor", "type", "profile_ids", "customer_before", "customer_after", "actor", "request_id", "reason", "at",
    }  # fmt: skip
    assert "example.com" not in json.dumps([r.events for r in received])


async def test_parked_batches_are_listed_and_redelivered_by_the_command_line(
    store: DeliveryRepository,
    repo: Neo4jRepository,
    service: IdentityService,
    driver: AsyncDriver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await make_events(service, 5)
    seqs = await all_seqs(driver)
    refusing = True
    receiver = ChangeReceiver(refuse=lambda n: 500 if refusing else None)
    with receiver.running():
        deliverer = worker(store, repo, fast(receiver.url, max_attempts=2), "r1")
        deliverer.start()
        try:
            await until("every batch parked", lambda: _delivered(store, seqs[-1]))
        finally:
            await deliverer.stop()
        assert receiver.cursors_accepted() == set()

        env = {
            "NEO4J_URI": settings.neo4j_uri,
            "NEO4J_USER": settings.neo4j_user,
            "NEO4J_PASSWORD": settings.neo4j_password,
            "IDGRAPH_ERASURE_KEY": ERASURE_KEY,
            "IDGRAPH_CHANGE_WEBHOOK_URL": receiver.url,
            "IDGRAPH_CHANGE_WEBHOOK_SECRET": SECRET,
        }
        for name, value in env.items():
            if value:
                monkeypatch.setenv(name, value)
            else:
                monkeypatch.delenv(name, raising=False)

        async def idgraph(*args: str) -> tuple[int, list[Any]]:
            capsys.readouterr()
            code = await asyncio.to_thread(cli.main, list(args))
            return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]

        code, parked = await idgraph("changes", "--parked")
        assert code == 0 and [p["first_cursor"] for p in parked] == [str(s) for s in seqs[::3]]
        assert {(p["attempts"], p["last_error"]) for p in parked} == {(2, "HTTP_500")}
        first = parked[0]["id"]

        code, outcome = await idgraph("changes", "--redeliver", first)  # still refused: one more attempt counted
        assert code == 1 and outcome == [{"id": first, "delivered": False, "events": 3, "error": "HTTP_500"}]
        refusing = False
        code, outcome = await idgraph("changes", "--redeliver", first)
        assert code == 0 and outcome == [{"id": first, "delivered": True, "events": 3, "error": None}]
        code, outcome = await idgraph("changes", "--redeliver")
        assert code == 0 and [o["id"] for o in outcome] == [p["id"] for p in parked[1:]]
        assert all(o["delivered"] for o in outcome)
        code, parked = await idgraph("changes", "--parked")
        assert code == 0 and parked == []
        code, _ = await idgraph("changes", "--redeliver", "1-2")
        assert code == 2  # no such batch
    assert receiver.cursors_accepted() == set(seqs) and all(r.signed for r in receiver.received)


async def _delivered(store: DeliveryRepository, seq: int) -> bool:
    return (await store.state()).delivered_seq >= seq
