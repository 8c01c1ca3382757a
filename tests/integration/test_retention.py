"""Automatic retention on the real Neo4j: the lease, run-once-per-interval with an injected clock, receipts, and a
retention purge that suppresses nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.bulk.purge import purge_request_id
from app.bulk.retention import RetentionScheduler
from app.cli import main as cli
from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.maintenance import MaintenanceRepository
from app.db.retention import RetentionRepository
from app.domain.model import ProfileInput
from app.domain.retention import RETENTION_ACTOR, Retention, RunStatus
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.erasure_key import ERASURE_KEY

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"
LEASE_S = 30.0
INTERVAL = timedelta(hours=6)


class Frozen:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(driver: AsyncDriver) -> RetentionRepository:
    return RetentionRepository(driver, timeout_s=30.0)


@pytest.fixture
def maintenance(driver: AsyncDriver) -> MaintenanceRepository:
    return MaintenanceRepository(driver, timeout_s=60.0)


@pytest.fixture
def frozen(clock: Clock) -> Frozen:
    return Frozen(clock.now + timedelta(days=40))


def replica(
    name: str,
    store: RetentionRepository,
    service: IdentityService,
    maintenance: Any,
    frozen: Frozen,
    *,
    lease_s: float = LEASE_S,
) -> RetentionScheduler:
    return RetentionScheduler(
        store, service, maintenance, Retention(30, INTERVAL), lease_s=lease_s, replica=name, clock=frozen
    )


async def old_profiles(service: IdentityService) -> list[str]:
    first = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    second = await service.upsert_profile(ProfileInput("webchat", ((EMAIL, "ret@example.com"),), source_id="ch-1"))
    return [first.profile.id, second.profile.id]


async def run_nodes(driver: AsyncDriver) -> list[dict[str, Any]]:
    records, _, _ = await driver.execute_query("MATCH (r:RetentionRun) RETURN r {.*} AS run ORDER BY r.started_at")
    return [dict(r["run"]) for r in records]


async def test_a_lease_is_exclusive_until_it_expires_and_then_another_replica_takes_it(
    store: RetentionRepository, frozen: Frozen
) -> None:
    now = frozen.now
    lease = timedelta(seconds=LEASE_S)
    taken, held = await store.acquire_lease("a", now=now, expires_at=now + lease)
    assert taken and held.holder == "a" and held.expires_at == now + lease

    refused, seen = await store.acquire_lease("b", now=now + timedelta(seconds=1), expires_at=now + 2 * lease)
    assert not refused and seen.holder == "a" and seen.expires_at == now + lease

    assert await store.renew_lease("a", expires_at=now + 2 * lease)
    renewed, mine = await store.acquire_lease("a", now=now + lease, expires_at=now + 3 * lease)
    assert renewed and mine.expires_at == now + 3 * lease
    late, _ = await store.acquire_lease("b", now=now + 3 * lease - timedelta(microseconds=1), expires_at=now)
    assert not late

    taken_over, theirs = await store.acquire_lease("b", now=now + 3 * lease, expires_at=now + 4 * lease)
    assert taken_over and theirs.holder == "b"
    assert not await store.renew_lease("a", expires_at=now + 5 * lease)  # the old holder cannot win it back
    assert not await store.release_lease("a", now=now + 3 * lease)
    assert (await store.lease()) == theirs

    assert await store.release_lease("b", now=now + 3 * lease)
    after_release, _ = await store.acquire_lease("a", now=now + 3 * lease, expires_at=now + 4 * lease)
    assert after_release  # a released lease is free at once, without waiting for its expiry


async def test_concurrent_replicas_never_both_take_the_lease(store: RetentionRepository, frozen: Frozen) -> None:
    now = frozen.now
    results = await asyncio.gather(
        *(store.acquire_lease(f"r{i}", now=now, expires_at=now + timedelta(seconds=LEASE_S)) for i in range(8))
    )
    winners = [lease.holder for taken, lease in results if taken]
    assert len(winners) == 1
    assert {lease.holder for _, lease in results} == set(winners)


async def test_the_holder_runs_once_per_interval_and_the_other_replica_never(
    service: IdentityService, maintenance: MaintenanceRepository, store: RetentionRepository, frozen: Frozen
) -> None:
    purged = await old_profiles(service)
    a = replica("a", store, service, maintenance, frozen)
    b = replica("b", store, service, maintenance, frozen)

    assert await a.tick() == 0.0  # it ran, and looks again at once
    assert await b.tick() == pytest.approx(LEASE_S / 3)  # not the holder: only tries for the lease again later
    assert await a.tick() == pytest.approx(LEASE_S / 3)  # not due before the interval: renews the lease
    runs = await store.runs()
    assert [(r.replica, r.status, r.candidates, r.profiles_deleted, r.failed) for r in runs] == [
        ("a", RunStatus.COMPLETED, 2, 2, 0)
    ]
    assert runs[0].started_at == frozen.now and runs[0].finished_at == frozen.now
    receipt = await service.erasure_receipt(purge_request_id(frozen.now, purged[0]))
    assert receipt is not None and receipt.requested_by == RETENTION_ACTOR

    frozen.now += INTERVAL - timedelta(seconds=1)
    assert await a.tick() == pytest.approx(1.0)  # due in one second
    assert await b.tick() > 0
    assert len(await store.runs()) == 1

    frozen.now += timedelta(seconds=1)
    assert await b.tick() > 0  # due now, but the lease is a's
    assert await a.tick() == 0.0
    runs = await store.runs()
    assert [(r.replica, r.started_at, r.candidates) for r in runs] == [
        ("a", frozen.now, 0),
        ("a", runs[1].started_at, 2),
    ]


async def test_after_the_holder_stops_renewing_the_other_replica_takes_over_when_the_lease_expires(
    service: IdentityService, maintenance: MaintenanceRepository, store: RetentionRepository, frozen: Frozen
) -> None:
    a = replica("a", store, service, maintenance, frozen)
    b = replica("b", store, service, maintenance, frozen)
    await a.tick()
    started = frozen.now
    frozen.now += timedelta(seconds=LEASE_S - 1)
    await b.tick()
    lease = await store.lease()
    assert lease is not None and lease.holder == "a"

    frozen.now = started + INTERVAL  # a died long ago: its lease expired, and a run is due
    assert await b.tick() == 0.0
    assert [r.replica for r in await store.runs()] == ["b", "a"]


async def test_a_run_stopped_by_a_database_error_is_recorded_failed_with_its_counts(
    service: IdentityService, maintenance: MaintenanceRepository, store: RetentionRepository, frozen: Frozen
) -> None:
    from app.errors import DatabaseUnavailable

    await old_profiles(service)

    class Failing:
        async def inactive_profiles(
            self, before: datetime, after: tuple[datetime, str] | None, limit: int
        ) -> list[tuple[str, datetime]]:
            if after is not None:  # the second page: the database went away meanwhile
                raise DatabaseUnavailable("the identity database is unavailable")
            found = await maintenance.inactive_profiles(before, after, limit)
            return found + [(f"gone-{i}", before) for i in range(limit - len(found))]  # a full first page

    failing = replica("a", store, service, Failing(), frozen)
    await failing.tick()
    [run] = await store.runs()
    assert (run.status, run.error, run.candidates, run.profiles_deleted) == (
        RunStatus.FAILED,
        "DATABASE_UNAVAILABLE",
        500,
        2,
    )


async def test_a_holder_that_loses_its_lease_mid_run_stops_and_its_run_is_abandoned(
    service: IdentityService, maintenance: MaintenanceRepository, store: RetentionRepository, frozen: Frozen
) -> None:
    await old_profiles(service)
    reading = asyncio.Event()
    never = asyncio.Event()

    class Stuck:
        async def inactive_profiles(
            self, before: datetime, after: tuple[datetime, str] | None, limit: int
        ) -> list[tuple[str, datetime]]:
            reading.set()
            await never.wait()  # a purge that takes longer than its lease
            return []

    stalled = Frozen(frozen.now)  # a's clock: its renewals never reach past its start + 0.3 s
    a = replica("a", store, service, Stuck(), stalled, lease_s=0.3)
    b = replica("b", store, service, maintenance, frozen)
    running = asyncio.create_task(a.tick())
    async with asyncio.timeout(30):
        await reading.wait()
        frozen.now += INTERVAL  # for b, a's lease has lapsed and the next run is due
        assert await b.tick() == 0.0
        await running  # a's next renewal finds the lease taken and stops the stuck purge
    runs = await store.runs()
    assert [(r.replica, r.status) for r in runs] == [("b", RunStatus.COMPLETED), ("a", RunStatus.ABANDONED)]
    assert runs[1].finished_at is not None and runs[1].finished_at >= runs[1].started_at
    assert runs[0].profiles_deleted == 2


async def test_a_retention_purge_suppresses_nothing_so_the_records_and_values_may_come_back(
    service: IdentityService, maintenance: MaintenanceRepository, store: RetentionRepository, frozen: Frozen
) -> None:
    purged = await old_profiles(service)
    await replica("a", store, service, maintenance, frozen).tick()
    for profile_id in purged:
        receipt = await service.erasure_receipt(purge_request_id(frozen.now, profile_id))
        assert receipt is not None and receipt.suppressed == 0 and receipt.records_suppressed == 0
    assert (await service.resolve([(PHONE, "+14155552671")])).customer is None

    again = await service.upsert_profile(ProfileInput("ivr", ((PHONE, "+14155552671"),), source_id="call-1"))
    other = await service.upsert_profile(ProfileInput("webchat", ((EMAIL, "ret@example.com"),), source_id="ch-1"))
    assert again.created and again.rejected == () and other.created and other.rejected == ()
    found = await service.resolve([(PHONE, "+14155552671")])
    assert found.customer is not None and [p.source_id for p in found.customer.profiles] == ["call-1"]


async def test_a_run_receipt_holds_counts_times_and_the_replica_but_no_personal_data(
    service: IdentityService,
    maintenance: MaintenanceRepository,
    store: RetentionRepository,
    frozen: Frozen,
    driver: AsyncDriver,
) -> None:
    purged = await old_profiles(service)
    await replica("host:1:abc", store, service, maintenance, frozen).tick()
    [node] = await run_nodes(driver)
    assert set(node) == {
        "id",
        "replica",
        "started_at",
        "finished_at",
        "inactive_days",
        "status",
        "candidates",
        "profiles_deleted",
        "identities_deleted",
        "failed",
        "changes_trimmed",
    }
    shown = " ".join(str(v) for v in node.values())
    for secret in (*purged, "+14155552671", "ret@example.com", "call-1", "ch-1"):
        assert secret not in shown


async def test_purge_status_prints_the_lease_and_the_last_runs_without_personal_data(
    service: IdentityService,
    maintenance: MaintenanceRepository,
    store: RetentionRepository,
    frozen: Frozen,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in (
        ("NEO4J_URI", settings.neo4j_uri),
        ("NEO4J_USER", settings.neo4j_user),
        ("NEO4J_PASSWORD", settings.neo4j_password),
        ("IDGRAPH_ERASURE_KEY", ERASURE_KEY),
    ):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)

    async def idgraph(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await idgraph("purge", "--status")
    assert code == 0 and out.splitlines() == [
        "lease: never taken (no automatic retention run yet)",
        "no automatic retention run recorded",
    ]
    purged = await old_profiles(service)
    await replica("host:7:abc", store, service, maintenance, frozen, lease_s=3600.0).tick()

    code, out, _ = await idgraph("purge", "--status")
    lease, head, run = out.splitlines()
    assert code == 0 and lease.startswith("lease: ") and head.split()[:3] == ["started", "finished", "status"]
    assert run.split()[2:] == ["COMPLETED", "30", "2", "2", "2", "0", "0", "host:7:abc"]
    code, out, _ = await idgraph("purge", "--status", "--json")
    [shown] = json.loads(out)["runs"]
    assert code == 0 and (shown["replica"], shown["profiles_deleted"]) == ("host:7:abc", 2)
    for secret in (*purged, "+14155552671", "ret@example.com", "call-1", "ch-1"):
        assert secret not in out

    code, _, err = await idgraph("purge")
    assert code == 2 and "--inactive-days N is required (or --status" in err
    code, _, err = await idgraph("purge", "--status", "--inactive-days", "3")
    assert code == 2 and "--status only reads" in err


async def test_a_replica_that_may_not_purge_yet_takes_no_lease_and_runs_nothing(
    service: IdentityService, maintenance: MaintenanceRepository, store: RetentionRepository, frozen: Frozen
) -> None:
    await old_profiles(service)
    waiting = RetentionScheduler(
        store,
        service,
        maintenance,
        Retention(30, INTERVAL),
        lease_s=LEASE_S,
        replica="a",
        clock=frozen,
        ready=lambda: False,
    )
    assert await waiting.tick() == pytest.approx(LEASE_S / 3)
    assert await store.lease() is None and await store.runs() == []
