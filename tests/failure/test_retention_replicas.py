"""Automatic retention on two real `idgraph serve` replicas of one database: runs never overlap and are an interval
apart, and killing the lease holder lets the other replica take over once the lease has expired."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db.driver import AsyncDriver
from app.domain.retention import RETENTION_ACTOR
from app.domain.strategy import default_strategy_text
from tests.failure.server import Database, Served, serve

pytestmark = [pytest.mark.neo4j, pytest.mark.failure]

INTERVAL_S = 3
LEASE_S = 6  # renewed every 2 s; a holder stops a run it could not renew 2 s before the lease ends
OLD_PROFILES = 30
WAIT_S = 90.0  # bound of every wait: a replica start, runs to appear, a takeover

SEED = """
UNWIND range(1, $n) AS i
CREATE (:Profile {id: 'retention-old-' + toString(i), source: 'crm', source_id: 'R-' + toString(i),
                  created_at: datetime() - duration('P90D'), updated_at: datetime() - duration('P30D')})
"""

RUNS = "MATCH (r:RetentionRun) RETURN r {.*} AS run ORDER BY r.started_at"


@pytest.fixture
def replicas() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        served.stop()


async def rows(driver: AsyncDriver, query: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = await driver.execute_query(query, params)
    return [dict(r) for r in records]


async def runs(driver: AsyncDriver) -> list[dict[str, Any]]:
    return [dict(r["run"]) for r in await rows(driver, RUNS)]


async def poll(what: str, check: Callable[[], Awaitable[bool]], replicas: list[Served]) -> None:
    """Wait until `check()` holds, within WAIT_S; fails with the replicas' log tails otherwise."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        if time.monotonic() > deadline:
            tails = "\n\n".join(f"replica :{s.port}\n{s.log_tail()}" for s in replicas)
            pytest.fail(f"{what}: not within {WAIT_S:g}s\n{tails}")
        await asyncio.sleep(0.25)


def native(value: Any) -> datetime:
    converted: datetime = value.to_native()
    return converted


async def test_two_replicas_run_retention_once_per_interval_and_the_survivor_takes_over(
    driver: AsyncDriver, database: Database, replicas: list[Served], tmp_path: Path
) -> None:
    await rows(driver, SEED, n=OLD_PROFILES)
    strategy = tmp_path / "strategy.toml"
    strategy.write_text(
        default_strategy_text() + f'\n[retention]\ninactive_days = 1\ninterval = "{INTERVAL_S}s"\n', encoding="utf-8"
    )
    for name in ("a", "b"):
        starting = functools.partial(
            serve, database, tmp_path / name, IDGRAPH_STRATEGY=str(strategy), IDGRAPH_RETENTION_LEASE_S=str(LEASE_S)
        )
        replicas.append(await asyncio.to_thread(starting))
    by_pid = {served.process.pid: served for served in replicas}

    async def finished_runs(count: int) -> bool:
        return sum(1 for r in await runs(driver) if r["status"] != "RUNNING") >= count

    await poll("three finished retention runs", lambda: finished_runs(3), replicas)
    assert (await rows(driver, "MATCH (p:Profile) RETURN count(p) AS n"))[0]["n"] == 0
    purged = await rows(driver, "MATCH (r:ErasureReceipt) RETURN r.requested_by AS by, count(r) AS n")
    assert purged == [{"by": RETENTION_ACTOR, "n": OLD_PROFILES}]

    [lease] = await rows(driver, "MATCH (l:RetentionLease) RETURN l.holder AS holder")
    holder = by_pid[int(str(lease["holder"]).split(":")[1])]
    survivor = next(s for s in replicas if s is not holder)
    async with httpx.AsyncClient(base_url=holder.base_url, timeout=10.0) as http:
        metrics = (await http.get("/metrics")).text
    assert "idgraph_retention_last_run_timestamp_seconds " in metrics
    assert 'idgraph_retention_runs_total{status="COMPLETED"}' in metrics
    assert "idgraph_retention_lease_held 1.0" in metrics

    holder.process.kill()
    holder.process.wait()
    killed_at = datetime.now(UTC)
    survivor_pid = f":{survivor.process.pid}:"

    async def survivor_ran() -> bool:
        return any(survivor_pid in r["replica"] and native(r["started_at"]) > killed_at for r in await runs(driver))

    await poll("a run by the surviving replica after the kill", survivor_ran, replicas)
    survivor.stop()  # a clean shutdown: releases the lease, records a run it interrupts

    recorded = await runs(driver)
    assert all(r["status"] != "RUNNING" and r.get("finished_at") is not None for r in recorded), recorded
    spans = [(native(r["started_at"]), native(r["finished_at"]), r["replica"]) for r in recorded]
    for (start, end, who), (next_start, _, next_who) in itertools.pairwise(spans):
        assert end <= next_start, f"run of {who} {start}..{end} overlaps the run of {next_who} from {next_start}"
        assert next_start - start >= timedelta(seconds=INTERVAL_S), f"runs {start} and {next_start} too close"
    takeover = next(s for s in spans if survivor_pid in s[2] and s[0] > killed_at)
    assert takeover[0] >= killed_at  # the survivor ran after the kill (the lease had expired by then)
    assert {who.split(":")[1] for _, _, who in spans} <= {str(s.process.pid) for s in replicas}
