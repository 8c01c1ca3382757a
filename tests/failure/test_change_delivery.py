"""Outbound change delivery from real `idgraph serve` processes to a local receiver: SIGKILL of the delivering server
mid-delivery loses nothing once a server runs again, and two replicas on one database never have a batch in flight
at the same time (the receiver records every request's span and cursors)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.db.driver import AsyncDriver
from tests.change_receiver import SECRET, ChangeReceiver, Received, in_order, overlapping_in_time
from tests.failure.server import Database, Served, serve

pytestmark = [pytest.mark.neo4j, pytest.mark.failure]

LEASE_S = 6  # renewed every 2 s; a POST (bound 2 s) starts only when it ends 2 s before the lease would
WAIT_S = 120.0
PROFILES = "/api/v2/customer-data-platform/identities"


@pytest.fixture
def replicas() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        served.stop()


def webhook_env(receiver: ChangeReceiver, batch_size: int) -> dict[str, str]:
    return {
        "IDGRAPH_CHANGE_WEBHOOK_URL": receiver.url,
        "IDGRAPH_CHANGE_WEBHOOK_SECRET": SECRET,
        "IDGRAPH_CHANGE_WEBHOOK_BATCH_SIZE": str(batch_size),
        "IDGRAPH_CHANGE_WEBHOOK_LEASE_S": str(LEASE_S),
        "IDGRAPH_CHANGE_WEBHOOK_TIMEOUT_S": "2",
        "IDGRAPH_CHANGE_WEBHOOK_BACKOFF_S": "0.05",
        "IDGRAPH_CHANGE_WEBHOOK_POLL_S": "0.1",
    }


async def start(database: Database, var_dir: Path, env: dict[str, Any]) -> Served:
    """`idgraph serve` with these IDGRAPH_* settings (values are strings; Any only for serve()'s keyword typing)."""
    return await asyncio.to_thread(functools.partial(serve, database, var_dir, **env))


async def write_profiles(served: Served, names: range) -> None:
    """One REST upsert per name: each writes its change events in its own transaction."""
    async with served.async_client() as http:
        for i in names:
            body = {"source": "crm", "source_id": f"W{i}", "identities": [{"key": "phone_number", "value": _phone(i)}]}
            answer = await http.post(PROFILES, json=body)
            assert answer.status_code == 201, answer.text


def _phone(i: int) -> str:
    return f"+1415555{i:04d}"


async def all_seqs(driver: AsyncDriver) -> list[int]:
    records, _, _ = await driver.execute_query("MATCH (c:Change) RETURN c.seq AS seq ORDER BY seq")
    return [int(r["seq"]) for r in records]


async def until(what: str, check: Callable[[], bool], replicas: list[Served]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            tails = "\n\n".join(f"replica :{s.port}\n{s.log_tail()}" for s in replicas)
            pytest.fail(f"{what}: not within {WAIT_S:g}s\n{tails}")
        await asyncio.sleep(0.1)


def first_arrivals(received: list[Received]) -> list[int]:
    """The accepted cursors in the order they first arrived."""
    seen: dict[int, None] = {}
    for r in received:
        if r.accepted:
            seen.update(dict.fromkeys(c for c in r.cursors if c not in seen))
    return list(seen)


async def holder_of(driver: AsyncDriver, replicas: list[Served]) -> Served:
    records, _, _ = await driver.execute_query(
        "MATCH (l:RetentionLease {name: 'change-webhook'}) RETURN l.holder AS holder"
    )
    pid = int(str(records[0]["holder"]).split(":")[1])
    return next(s for s in replicas if s.process.pid == pid)


def check_delivery(receiver: ChangeReceiver, seqs: list[int]) -> None:
    received = receiver.received
    assert all(r.signed for r in received), "a delivery without a valid signature"
    assert in_order(received)
    assert first_arrivals(received) == seqs  # every event, first seen in cursor order
    assert overlapping_in_time(received) == [] and receiver.in_flight_max == 1


async def test_killing_the_delivering_server_loses_no_event(
    driver: AsyncDriver, database: Database, replicas: list[Served], tmp_path: Path
) -> None:
    receiver = ChangeReceiver(hold_s=0.3)
    with receiver.running():
        env = webhook_env(receiver, batch_size=4)
        first = await start(database, tmp_path / "first", env)
        replicas.append(first)
        await write_profiles(first, range(40))
        seqs = await all_seqs(driver)
        assert len(seqs) >= 40
        await until("two batches accepted", lambda: len(receiver.accepted()) >= 2, replicas)
        first.process.kill()  # SIGKILL, most likely with a batch in flight
        first.process.wait()
        assert not receiver.cursors_accepted() >= set(seqs), "delivered everything before the kill: nothing tested"

        second = await start(database, tmp_path / "second", env)
        replicas.append(second)
        await write_profiles(second, range(40, 44))
        seqs = await all_seqs(driver)
        await until(
            "every event accepted after the restart", lambda: receiver.cursors_accepted() >= set(seqs), replicas
        )
    check_delivery(receiver, seqs)


async def test_two_replicas_never_deliver_at_the_same_time(
    driver: AsyncDriver, database: Database, replicas: list[Served], tmp_path: Path
) -> None:
    receiver = ChangeReceiver(hold_s=0.2, refuse=lambda n: 503 if n % 7 == 3 else None)  # some retries too
    with receiver.running():
        env = webhook_env(receiver, batch_size=3)
        for name in ("a", "b"):
            replicas.append(await start(database, tmp_path / name, env))
        await asyncio.gather(write_profiles(replicas[0], range(0, 30)), write_profiles(replicas[1], range(30, 60)))
        await until("a few batches accepted", lambda: len(receiver.accepted()) >= 3, replicas)
        holder = await holder_of(driver, replicas)
        holder.stop()  # a clean stop releases the lease: the other replica goes on
        survivor = next(s for s in replicas if s is not holder)
        await write_profiles(survivor, range(60, 66))
        seqs = await all_seqs(driver)
        await until("every event accepted", lambda: receiver.cursors_accepted() >= set(seqs), replicas)
        async with survivor.async_client() as http:

            async def lag_gone() -> bool:
                metrics = (await http.get("/metrics")).text
                return "idgraph_change_webhook_cursor_lag 0.0" in metrics and "lease_held 1.0" in metrics

            deadline = time.monotonic() + WAIT_S
            while not await lag_gone():
                assert time.monotonic() < deadline, survivor.log_tail()
                await asyncio.sleep(0.1)
            metrics = (await http.get("/metrics")).text
    check_delivery(receiver, seqs)
    assert any(r.status == 503 for r in receiver.received)
    assert "idgraph_change_webhook_delivered_events_total" in metrics
    assert "idgraph_change_webhook_parked_batches 0.0" in metrics
