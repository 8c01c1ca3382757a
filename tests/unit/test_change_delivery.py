"""Outbound change delivery without a database or a network: batching, backoff, parking, the lease and redelivery
(app/bulk/delivery.py) over fakes; the settings that turn it on (app/config.py); the pure rules
(app/domain/delivery.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from app.bulk.delivery import ChangeDeliverer, DeliveryMetrics, redeliver
from app.config import Settings
from app.domain.changes import ChangeEvent, ChangeType
from app.domain.delivery import (
    Delivery,
    DeliveryState,
    ParkedBatch,
    backoff_s,
    error_class,
    failure_kind,
    parse_batch_id,
)
from app.domain.retention import Lease
from app.errors import InvalidInput

START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DELIVERY = Delivery(url="http://127.0.0.1:9/hook", secret="s", batch_size=3, max_attempts=4, backoff_s=1.0)


class Time:
    """The clock of the deliverer and its sleep: sleeping moves the clock, and is recorded."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


class FakeStore:
    """The DeliveryStore in memory: one lease, the cursor, parked batches; fenced like the Cypher."""

    def __init__(self, clock: Time) -> None:
        self.clock = clock
        self.holder: str | None = None
        self.expires_at: datetime | None = None
        self.delivered_seq = 0
        self.batches: dict[str, ParkedBatch] = {}
        self.settled: list[tuple[str, str | None]] = []

    def _holds(self, replica: str, now: datetime) -> bool:
        return self.holder == replica and self.expires_at is not None and self.expires_at > now

    async def acquire_lease(self, replica: str, *, now: datetime, expires_at: datetime) -> tuple[bool, Lease]:
        free = self.holder is None or self.holder == replica or (self.expires_at is not None and self.expires_at <= now)
        if free:
            self.holder, self.expires_at = replica, expires_at
        return free, Lease(self.holder, self.expires_at, None)

    async def renew_lease(self, replica: str, *, expires_at: datetime) -> bool:
        if self.holder != replica:
            return False
        self.expires_at = expires_at
        return True

    async def release_lease(self, replica: str, *, now: datetime) -> bool:
        if self.holder != replica:
            return False
        self.holder, self.expires_at = None, now
        return True

    async def state(self) -> DeliveryState:
        return DeliveryState(self.delivered_seq, len(self.batches))

    async def advance(self, replica: str, *, now: datetime, seq: int) -> bool:
        if not self._holds(replica, now):
            return False
        self.delivered_seq = max(self.delivered_seq, seq)
        return True

    async def park(self, replica: str, batch: ParkedBatch) -> bool:
        if not self._holds(replica, batch.parked_at):
            return False
        self.batches[batch.id] = batch
        self.delivered_seq = max(self.delivered_seq, batch.last_seq)
        return True

    async def parked(self, batch: str | None = None) -> list[ParkedBatch]:
        return sorted((b for b in self.batches.values() if batch in (None, b.id)), key=lambda b: b.first_seq)

    async def settle(self, batch: ParkedBatch, *, error: str | None, now: datetime) -> bool:
        self.settled.append((batch.id, error))
        if error is None:
            del self.batches[batch.id]
        else:
            self.batches[batch.id] = replace(batch, attempts=batch.attempts + 1, last_error=error, retried_at=now)
        return True


class FakeLog:
    def __init__(self, count: int) -> None:
        self.events = [
            ChangeEvent(seq, ChangeType.PROFILE_CREATED, (f"p{seq}",), None, f"p{seq}", "cli", None, None, START)
            for seq in range(1, count + 1)
        ]

    async def changes(self, *, after: int, limit: int, **_: object) -> list[ChangeEvent]:
        return [e for e in self.events if e.seq > after][:limit]

    async def last_change(self) -> int:
        return self.events[-1].seq if self.events else 0


class FakeEndpoint:
    """Answers each POST from `answers` in turn (a status, or an exception to raise), then 200."""

    def __init__(self, answers: Sequence[int | BaseException] = ()) -> None:
        self.answers = list(answers)
        self.bodies: list[bytes] = []

    async def post(self, body: bytes) -> int:
        self.bodies.append(body)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def cursors(self) -> list[list[int]]:
        return [[int(e["cursor"]) for e in json.loads(b)["events"]] for b in self.bodies]


def deliverer(
    store: FakeStore,
    log: FakeLog,
    endpoint: FakeEndpoint,
    clock: Time,
    *,
    replica: str = "r1",
    delivery: Delivery = DELIVERY,
    metrics: DeliveryMetrics | None = None,
) -> ChangeDeliverer:
    return ChangeDeliverer(
        store, log, endpoint, delivery, replica=replica, metrics=metrics, clock=clock, sleep=clock.sleep
    )


async def drain(worker: ChangeDeliverer, ticks: int = 20) -> None:
    for _ in range(ticks):
        await worker.sleep(await worker.tick())


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_s(n, 0.5, cap_s=5.0) for n in range(0, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_s(10_000, 1.0, cap_s=300.0) == 300.0  # no overflow however long it has failed


def test_a_failure_is_recorded_by_its_class_never_its_message() -> None:
    assert error_class(503, None) == "HTTP_503"
    assert error_class(None, TimeoutError("secret detail")) == "TIMEOUT"
    assert error_class(None, ConnectionRefusedError("secret detail")) == "CONNECTION_REFUSED"
    assert error_class(None, ConnectionResetError("secret detail")) == "ConnectionResetError"
    kinds = [failure_kind(e) for e in ("HTTP_404", "HTTP_503", "HTTP_302", "TIMEOUT", "CONNECTION_REFUSED", "X")]
    assert kinds == ["http_4xx", "http_5xx", "http_other", "timeout", "connection_refused", "other"]


@pytest.mark.parametrize("text", ["", "12", "a-b", "5-3", "1-2-3", "-4", "\uff11-2"])
def test_a_parked_batch_id_is_a_cursor_range(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_batch_id(text)
    assert parse_batch_id(" 101-200 ") == (101, 200)


async def test_events_go_in_cursor_order_in_batches_and_the_cursor_follows() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(7), FakeEndpoint()
    registry = CollectorRegistry()
    worker = deliverer(store, log, endpoint, clock, metrics=DeliveryMetrics(registry))
    await drain(worker)
    assert endpoint.cursors() == [[1, 2, 3], [4, 5, 6], [7]]
    assert store.delivered_seq == 7
    first = json.loads(endpoint.bodies[0])["events"][0]
    assert set(first) == {
        "cursor", "type", "profile_ids", "customer_before", "customer_after", "actor", "request_id", "reason", "at",
    }  # fmt: skip
    assert (
        first["cursor"] == "1" and first["type"] == "PROFILE_CREATED" and first["at"] == "2026-12-05T12:00:00.000000Z"
    )
    assert value(registry, "idgraph_change_webhook_delivered_events_total") == 7
    assert value(registry, "idgraph_change_webhook_cursor_lag") == 0
    assert value(registry, "idgraph_change_webhook_lease_held") == 1


async def test_failed_attempts_back_off_exponentially_then_the_batch_is_delivered() -> None:
    clock = Time()
    failures: list[int | BaseException] = [503, TimeoutError(), ConnectionRefusedError()]
    store, log, endpoint = FakeStore(clock), FakeLog(2), FakeEndpoint(failures)
    registry = CollectorRegistry()
    worker = deliverer(store, log, endpoint, clock, metrics=DeliveryMetrics(registry))
    assert await worker.tick() == 0.0
    assert endpoint.cursors() == [[1, 2]] * 4  # the same batch, whole, each time
    assert len(set(endpoint.bodies)) == 1
    # 1 s, 2 s, 4 s; the lease (60 s, renewed every 20 s) never needs renewing between attempts here.
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert store.delivered_seq == 2 and store.batches == {}
    for kind in ("http_5xx", "timeout", "connection_refused"):
        assert value(registry, "idgraph_change_webhook_failed_attempts_total", kind=kind) == 1


async def test_a_long_backoff_renews_the_lease_while_it_waits() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(1), FakeEndpoint([500] * 6)
    delivery = replace(DELIVERY, max_attempts=8, backoff_s=10.0, lease_s=30.0, timeout_s=5.0)
    worker = deliverer(store, log, endpoint, clock, delivery=delivery)
    assert await worker.tick() == 0.0
    assert store.delivered_seq == 1 and len(endpoint.bodies) == 7
    assert max(clock.sleeps) <= delivery.lease_s / 3  # a backoff of 320 s is slept in steps between renewals
    assert store.holder == "r1" and store.expires_at is not None and store.expires_at > clock.now


async def test_after_max_attempts_the_batch_is_parked_and_delivery_goes_on() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(5), FakeEndpoint([500, 500, 404, 500])
    registry = CollectorRegistry()
    worker = deliverer(store, log, endpoint, clock, metrics=DeliveryMetrics(registry))
    await drain(worker)
    assert endpoint.cursors() == [[1, 2, 3]] * 4 + [[4, 5]]
    [parked] = await store.parked()
    assert (parked.id, parked.first_seq, parked.last_seq, parked.events) == ("1-3", 1, 3, 3)
    assert (parked.attempts, parked.last_error) == (4, "HTTP_500")
    assert store.delivered_seq == 5
    assert value(registry, "idgraph_change_webhook_batches_parked_total") == 1
    assert value(registry, "idgraph_change_webhook_parked_batches") == 1
    assert value(registry, "idgraph_change_webhook_failed_attempts_total", kind="http_4xx") == 1


async def test_a_replica_without_the_lease_sends_nothing() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(3), FakeEndpoint()
    store.holder, store.expires_at = "other", START + timedelta(minutes=5)
    worker = deliverer(store, log, endpoint, clock)
    assert await worker.tick() == DELIVERY.lease_s / 3
    assert endpoint.bodies == [] and store.delivered_seq == 0


async def test_a_batch_whose_lease_was_taken_meanwhile_leaves_the_cursor_for_the_next_holder() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(2), FakeEndpoint()
    worker = deliverer(store, log, endpoint, clock)

    async def taken_while_posting(body: bytes) -> int:
        endpoint.bodies.append(body)
        store.holder = "other"  # e.g. this replica stalled past its lease and another took it
        return 200

    endpoint.post = taken_while_posting  # type: ignore[method-assign]
    await worker.tick()
    assert len(endpoint.bodies) == 1
    assert store.delivered_seq == 0  # sent at least once: the next holder sends it again


async def test_no_attempt_starts_that_could_outlast_the_lease() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(1), FakeEndpoint()
    tight = replace(DELIVERY, lease_s=30.0, timeout_s=25.0)  # config refuses this; the deliverer holds regardless
    worker = deliverer(store, log, endpoint, clock, delivery=tight)
    await worker.tick()
    assert endpoint.bodies == []


async def test_stop_releases_the_lease() -> None:
    clock = Time()
    store, log, endpoint = FakeStore(clock), FakeLog(0), FakeEndpoint()
    worker = deliverer(store, log, endpoint, clock)
    worker.start()
    await worker.stop()  # the task may not have ticked yet: then there is nothing to release
    await worker.tick()
    assert store.holder == "r1"
    await worker.stop()
    assert store.holder is None


async def test_redeliver_sends_each_parked_batch_once_and_settles_it() -> None:
    clock = Time()
    store, log = FakeStore(clock), FakeLog(9)
    for first, last in ((1, 3), (4, 6), (7, 9)):
        store.batches[f"{first}-{last}"] = ParkedBatch(first, last, 3, 8, "HTTP_503", START)
    endpoint = FakeEndpoint([200, 502, 200])
    done = await redeliver(store, log, endpoint, await store.parked(), now=clock.now)
    assert endpoint.cursors() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [(d.batch.id, d.delivered, d.error, d.events) for d in done] == [
        ("1-3", True, None, 3),
        ("4-6", False, "HTTP_502", 3),
        ("7-9", True, None, 3),
    ]
    [left] = await store.parked()
    assert (left.id, left.attempts, left.last_error, left.retried_at) == ("4-6", 9, "HTTP_502", START)


def test_the_change_webhook_is_off_without_a_url() -> None:
    assert Settings.from_env({}).change_delivery() is None


def test_the_change_webhook_settings_are_read_from_the_environment() -> None:
    env = {
        "IDGRAPH_CHANGE_WEBHOOK_URL": "https://crm.example/hooks/idgraph",
        "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s3",
        "IDGRAPH_CHANGE_WEBHOOK_MAX_ATTEMPTS": "3",
        "IDGRAPH_CHANGE_WEBHOOK_BATCH_SIZE": "50",
        "IDGRAPH_CHANGE_WEBHOOK_TIMEOUT_S": "2",
        "IDGRAPH_CHANGE_WEBHOOK_LEASE_S": "6",
    }
    delivery = Settings.from_env(env).change_delivery()
    assert delivery == Delivery(
        "https://crm.example/hooks/idgraph", "s3", batch_size=50, max_attempts=3, timeout_s=2.0, lease_s=6.0
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "https://crm.example/h"}, "IDGRAPH_CHANGE_WEBHOOK_SECRET"),
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "ftp://crm.example/h", "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s"}, "_URL must"),
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "crm.example/h", "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s"}, "_URL must"),
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "https://crm.example/a b", "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s"}, "_URL must"),
        ({"IDGRAPH_CHANGE_WEBHOOK_URL": "https://crm.example/ä", "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s"}, "_URL must"),
        (
            {
                "IDGRAPH_CHANGE_WEBHOOK_URL": "http://crm.example/h",
                "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s",
                "IDGRAPH_CHANGE_WEBHOOK_BATCH_SIZE": "5000",
            },
            "IDGRAPH_CHANGE_WEBHOOK_BATCH_SIZE must be between 1 and 1000",
        ),
        (
            {
                "IDGRAPH_CHANGE_WEBHOOK_URL": "http://crm.example/h",
                "IDGRAPH_CHANGE_WEBHOOK_SECRET": "s",
                "IDGRAPH_CHANGE_WEBHOOK_LEASE_S": "20",
            },
            "IDGRAPH_CHANGE_WEBHOOK_LEASE_S must be at least 3 times IDGRAPH_CHANGE_WEBHOOK_TIMEOUT_S",
        ),
    ],
)
def test_a_change_webhook_it_cannot_use_is_refused_naming_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Settings.from_env(env).change_delivery()
    assert names in refused.value.message and "\n" not in refused.value.message


@pytest.mark.parametrize("raw", ["0", "-1", "2.5", "many"])
def test_max_attempts_must_be_a_whole_number(raw: str) -> None:
    with pytest.raises(InvalidInput, match="IDGRAPH_CHANGE_WEBHOOK_MAX_ATTEMPTS"):
        Settings.from_env({"IDGRAPH_CHANGE_WEBHOOK_MAX_ATTEMPTS": raw})
