"""Trimming the change log to [audit] keep_days on the real Neo4j (cypher/trim_changes.cypher): bounded batches, the
events' index nodes go with them, the count stays on the lease node, only the lease holder trims, and the automatic
retention job trims even without [retention]."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from neo4j import AsyncTransaction
from prometheus_client import generate_latest

from app.bulk.retention import RetentionMetrics, RetentionScheduler
from app.cli.retention_status import lease_line
from app.db.changes import Change, record_changes
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.db.retention import RetentionRepository
from app.db.transactions import run_transaction
from app.domain.changes import Audit, ChangeType
from app.domain.retention import AuditRetention, RunStatus
from app.services.changes import ChangeFeed
from app.services.identity import IdentityService
from app.web.observability import Metrics
from tests.clock import Clock

pytestmark = pytest.mark.neo4j

LEASE_S = 60.0


class Frozen:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(driver: AsyncDriver) -> RetentionRepository:
    return RetentionRepository(driver, timeout_s=30.0)


async def write_events(driver: AsyncDriver, at: datetime, count: int, prefix: str) -> None:
    """`count` events at `at`: a merge naming two profiles with customers before and after (one node each)."""

    async def work(tx: AsyncTransaction) -> None:
        changes = [
            Change(ChangeType.MERGE, (f"{prefix}{n}", f"{prefix}t"), f"{prefix}{n}", f"{prefix}t") for n in range(count)
        ]
        await record_changes(tx, changes, Audit("steward", reason="same person"), now=at)

    await run_transaction(driver, work, database="neo4j", write=True, budget_s=30.0)


async def labels(driver: AsyncDriver) -> dict[str, int]:
    records, _, _ = await driver.execute_query(
        "UNWIND ['Change', 'ChangeProfile', 'ChangeCustomer'] AS label "
        "CALL (label) { MATCH (n) WHERE label IN labels(n) RETURN count(n) AS n } RETURN label, n"
    )
    return {r["label"]: r["n"] for r in records}


async def lease_row(driver: AsyncDriver) -> dict[str, Any]:
    records, _, _ = await driver.execute_query("MATCH (l:RetentionLease {name: 'retention'}) RETURN l {.*} AS l")
    return dict(records[0]["l"])


async def test_only_events_older_than_the_cutoff_go_in_batches_with_their_index_nodes_and_are_counted(
    driver: AsyncDriver, store: RetentionRepository, clock: Clock
) -> None:
    now = clock.now
    await write_events(driver, now - timedelta(days=500), 5, "old")
    await write_events(driver, now - timedelta(days=10), 2, "new")
    assert await labels(driver) == {"Change": 7, "ChangeProfile": 14, "ChangeCustomer": 14}
    acquired, _ = await store.acquire_lease("r1", now=now, expires_at=now + timedelta(seconds=LEASE_S))
    assert acquired

    before = now - timedelta(days=400)
    assert await store.trim_changes("r1", now=now, before=before, limit=2) == 2
    assert await store.trim_changes("r1", now=now, before=before, limit=2) == 2
    assert await store.trim_changes("r1", now=now, before=before, limit=2) == 1
    assert await store.trim_changes("r1", now=now, before=before, limit=2) == 0

    assert await labels(driver) == {"Change": 2, "ChangeProfile": 4, "ChangeCustomer": 4}
    records, _, _ = await driver.execute_query("MATCH (n:ChangeProfile) RETURN collect(DISTINCT n.id) AS ids")
    assert set(records[0]["ids"]) == {"new0", "new1", "newt"}
    lease = await store.lease()
    assert lease is not None and lease.changes_trimmed == 5 and lease.changes_trimmed_at is not None
    assert "change log: 5 events trimmed" in lease_line(lease, now)


async def test_events_not_yet_delivered_or_parked_are_kept_however_old_and_the_kept_log_has_no_gap(
    driver: AsyncDriver, clock: Clock
) -> None:
    now = clock.now
    await write_events(driver, now - timedelta(days=500), 6, "old")  # seqs 1..6
    await write_events(driver, now - timedelta(days=10), 1, "new")  # seq 7
    await write_events(driver, now - timedelta(days=600), 1, "late")  # seq 8: an older clock, committed later
    await driver.execute_query(
        "CREATE (:ChangeDelivery {name: 'webhook', delivered_seq: 5}), (:ParkedChangeBatch {id: '3-4', first_seq: 3})"
    )
    delivering = RetentionRepository(driver, timeout_s=30.0, keep_undelivered="webhook")
    await delivering.acquire_lease("r1", now=now, expires_at=now + timedelta(seconds=LEASE_S))
    before = now - timedelta(days=400)
    # Parked from seq 3: only 1 and 2 may go, whatever their age and the delivered cursor.
    assert await delivering.trim_changes("r1", now=now, before=before, limit=100) == 2
    await driver.execute_query("MATCH (b:ParkedChangeBatch) DELETE b")
    # Delivered up to 5: 3, 4 and 5 go; 6 is old but not delivered yet.
    assert await delivering.trim_changes("r1", now=now, before=before, limit=100) == 3
    # Without delivery to wait for, 6 goes and trimming stops at 7 (too young), so 8 stays with it: no gap.
    plain = RetentionRepository(driver, timeout_s=30.0)
    assert await plain.trim_changes("r1", now=now, before=before, limit=100) == 1
    records, _, _ = await driver.execute_query("MATCH (c:Change) RETURN collect(c.seq) AS seqs")
    assert sorted(records[0]["seqs"]) == [7, 8]


async def test_a_replica_without_the_lease_trims_nothing(
    driver: AsyncDriver, store: RetentionRepository, clock: Clock
) -> None:
    now = clock.now
    await write_events(driver, now - timedelta(days=500), 3, "old")
    await store.acquire_lease("r1", now=now, expires_at=now + timedelta(seconds=LEASE_S))
    assert await store.trim_changes("r2", now=now, before=now, limit=10) is None
    later = now + timedelta(seconds=LEASE_S + 1)  # r1's lease has run out: r1 may not trim either
    assert await store.trim_changes("r1", now=later, before=now, limit=10) is None
    assert (await labels(driver))["Change"] == 3
    assert "changes_trimmed" not in await lease_row(driver)


async def test_the_retention_job_trims_the_change_log_without_retention_and_leaves_the_count_visible(
    driver: AsyncDriver,
    store: RetentionRepository,
    service: IdentityService,
    repo: Neo4jRepository,
    clock: Clock,
) -> None:
    now = clock.now
    await write_events(driver, now - timedelta(days=40), 3, "old")
    await write_events(driver, now - timedelta(days=1), 1, "new")
    metrics = Metrics()
    job = RetentionScheduler(
        store,
        service,
        maintenance=None,  # type: ignore[arg-type]  # never used without [retention]
        retention=None,
        lease_s=LEASE_S,
        audit=AuditRetention(keep_days=30),
        replica="r1",
        clock=Frozen(now),
        metrics=RetentionMetrics(metrics.registry),
    )
    await job.tick()
    [run] = await store.runs()
    assert (run.status, run.inactive_days, run.changes_trimmed, run.profiles_deleted) == (
        RunStatus.COMPLETED,
        None,
        3,
        0,
    )
    page = await ChangeFeed(repo).page()
    assert [e.profile_ids[0] for e in page.events] == ["new0"]
    await job.tick()  # not due again for a day: the count is read back from the lease node
    exposition = generate_latest(metrics.registry).decode()
    assert "idgraph_audit_changes_trimmed 3.0" in exposition
    assert "idgraph_retention_last_run_changes_trimmed 3.0" in exposition
