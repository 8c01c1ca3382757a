"""kill -9 of the Neo4j JVM in the middle of a bulk load, on a neo4j-local of the test's own.

Every batch acknowledged before the kill is there after the restart, each with all its records and each record with
all its identities; what was in flight is all there or not there at all; running the load again (with the real
`idgraph ingest`) finishes it without duplicates. Meanwhile a real `idgraph serve` answers DATABASE_UNAVAILABLE while
the database is down and serves again, without a restart, once it is back.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import REPO_ROOT, Settings
from app.db import localserver
from app.db.driver import create_driver
from app.db.schema import migrate
from app.domain.model import IdentityKey, NormalizedIdentity
from app.domain.normalize import normalize
from app.domain.strategy import default_strategy
from bench.datagen import records
from tests.conftest import _fail_or_skip, free_port
from tests.failure import privacy
from tests.failure.server import Database, Served, child_env, error_codes, graphql_body, serve

pytestmark = [pytest.mark.neo4j, pytest.mark.failure]

RECORDS = 2000
BATCH = 50
KILL_AFTER_BATCHES = 4
START_WAIT_S = 240.0  # a cold neo4j-local start on a busy 2-core machine
OUTAGE_ANSWER_S = 5.0
RECOVERY_WAIT_S = 60.0

RESOLVE = """query($ids: [IdentityInput!]!) { resolve(identities: $ids) { status customer { id } } }"""

Record = tuple[str, str]  # (source, source_id)


@pytest.fixture(scope="module")
def own_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localserver.LocalServer]:
    server = localserver.LocalServer(home=tmp_path_factory.mktemp("crash") / "neo4j", port=free_port())
    privacy.watch_file(server.log_file)
    try:
        localserver.start(server, wait_s=START_WAIT_S, say=lambda message: None)
    except localserver.LocalDatabaseError as exc:
        _fail_or_skip(exc.message)
    try:
        asyncio.run(_migrate(server.uri))
        yield server
    finally:
        localserver.stop(server)


async def _migrate(uri: str) -> None:
    driver = create_driver(Settings(neo4j_uri=uri))
    try:
        await migrate(driver, "neo4j")
    finally:
        await driver.close()


def expected_identities(record: dict[str, Any]) -> frozenset[IdentityKey]:
    strategy = default_strategy()
    found = set()
    for identity in record["identities"]:
        result = normalize(strategy, identity["key"], identity["value"])
        if isinstance(result, NormalizedIdentity):
            found.add(result.identity)
    return frozenset(found)


async def graph_of(uri: str) -> tuple[dict[Record, list[frozenset[IdentityKey]]], dict[str, int]]:
    """Each source record's profiles (normally one) with the identities each holds, and structural counts."""
    driver = create_driver(Settings(neo4j_uri=uri))
    try:
        rows, _, _ = await driver.execute_query(
            "MATCH (p:Profile) OPTIONAL MATCH (p)-[:HAS_IDENTITY|OBSERVED]->(i:Identity) "
            "RETURN p.source AS source, p.source_id AS source_id, p.id AS id, "
            "collect([i.key, i.value]) AS identities",
            routing_="r",
        )
        profiles: dict[Record, list[frozenset[IdentityKey]]] = defaultdict(list)
        for row in rows:
            held = frozenset(IdentityKey(k, v) for k, v in row["identities"] if k is not None)
            profiles[(row["source"], row["source_id"])].append(held)
        counts = {}
        for name, query in {
            "duplicate identity nodes": "MATCH (i:Identity) WITH i.key AS k, i.value AS v, count(*) AS n "
            "WHERE n > 1 RETURN count(*) AS bad",
            "duplicate identity edges": "MATCH (p:Profile)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity) "
            "WITH p, i, count(e) AS n WHERE n > 1 RETURN count(*) AS bad",
            "identities without holders": "MATCH (i:Identity) "
            "WHERE NOT EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-(:Profile) } RETURN count(*) AS bad",
        }.items():
            result, _, _ = await driver.execute_query(query, routing_="r")
            counts[name] = result[0]["bad"]
        return dict(profiles), counts
    finally:
        await driver.close()


class Phases:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.spans: list[str] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.spans.append(f"{name} {now - self.last:.1f}s")
        self.last = now

    def __str__(self) -> str:
        return ", ".join(self.spans)


def read_acks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    acks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            acks.append(json.loads(line))
        except json.JSONDecodeError:  # a line the kill cut short was never acknowledged
            break
    return acks


def resolve(http: httpx.Client, key: str, value: str) -> tuple[list[str], Any, float]:
    started = time.monotonic()
    response = http.post("/graphql", json=graphql_body(RESOLVE, {"ids": [{"key": key, "value": value}]}))
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    return error_codes(body), body.get("data"), elapsed


@pytest.mark.timeout(600)
def test_a_kill_9_of_the_database_mid_load_loses_no_acknowledged_batch_and_the_service_recovers(
    own_database: localserver.LocalServer, tmp_path: Path
) -> None:
    server = own_database
    data = tmp_path / "profiles.jsonl"
    generated = list(records(RECORDS))
    data.write_text("".join(json.dumps(r) + "\n" for r in generated), encoding="utf-8")
    # What a stored record holds: its valid values (blocked ones too, as non-linking edges). A record with no valid
    # value and no attribute is refused, and stored nowhere.
    expected = {
        (r["source"], r["source_id"]): expected_identities(r)
        for r in generated
        if expected_identities(r) or r["attributes"]
    }
    batches = [
        {(r["source"], r["source_id"]) for r in generated[n : n + BATCH]} & set(expected)
        for n in range(0, RECORDS, BATCH)
    ]
    probe = next(
        key.value
        for record in sorted(batches[0])
        for key in expected[record]
        if key.key == "email_address" and key.value != "test@example.com"
    )

    db = Database(server.uri)
    phases = Phases()
    service: Served = serve(db, tmp_path / "serve")
    acks = tmp_path / "acks.jsonl"
    worker_log = privacy.watch_file(tmp_path / "worker.log")
    try:
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tests.failure.ingest_worker", str(data), str(acks), str(BATCH)],
                cwd=REPO_ROOT,
                env=child_env(db, tmp_path / "worker"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 180
            while len(read_acks(acks)) < KILL_AFTER_BATCHES:
                assert worker.poll() is None, f"the load stopped early:\n{worker_log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "the load acknowledged too few batches in time"
                time.sleep(0.02)

            phases.mark("load until the kill")
            localserver.kill(server)  # kill -9 the JVM in the middle of the load
            assert worker.wait(timeout=120) != 0, "the load did not notice the database was gone"
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        acknowledged = read_acks(acks)
        assert len(acknowledged) < len(batches), "the load finished before the kill: nothing was in flight"

        # The outage: the service answers at once with a code a client can act on, and stays up.
        with service.client() as http:
            for _ in range(2):
                codes, _, elapsed = resolve(http, "email_address", probe)
                assert codes == ["DATABASE_UNAVAILABLE"], codes
                assert elapsed < OUTAGE_ANSWER_S, f"the outage took {elapsed:.1f}s to report"
            assert http.get("/readyz").status_code == 503

            phases.mark("outage")
            localserver.start(server, wait_s=START_WAIT_S, say=lambda message: None)
            phases.mark("restart")

            # Back: the same service process serves again.
            deadline = time.monotonic() + RECOVERY_WAIT_S
            while True:
                codes, data_, _ = resolve(http, "email_address", probe)
                if not codes:
                    break
                # The first queries on a cold, just-recovered database may also run out of time.
                assert codes in (["DATABASE_UNAVAILABLE"], ["TIMEOUT"]), codes
                assert time.monotonic() < deadline, "the service did not recover after the database came back"
                time.sleep(0.5)
            assert data_["resolve"]["status"] == "FOUND"
            assert service.process.poll() is None
            assert http.get("/readyz").status_code == 200

        phases.mark("recovery")
        # Every acknowledged batch is there, each record with all its identities; batches are all-or-nothing.
        profiles, counts = asyncio.run(graph_of(server.uri))
        assert counts == dict.fromkeys(counts, 0), counts
        stored_acked = [tuple(r) for ack in acknowledged for r in ack["stored"]]
        assert stored_acked, "no record was acknowledged"
        missing = [r for r in stored_acked if r not in profiles]
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
        for record, held in profiles.items():
            assert held == [expected[record]], f"{record} is half-written or duplicated: {held}"
        for number, batch in enumerate(batches):
            present = {record in profiles for record in batch}
            assert len(present) == 1, f"batch {number} is partly stored"

        # Running the load again finishes it: everything once, nothing twice.
        finish = subprocess.run(
            [sys.executable, "-m", "app.cli", "ingest", str(data), "--rejects", str(tmp_path / "rejects.jsonl")],
            cwd=REPO_ROOT,
            env=child_env(db, tmp_path / "rerun"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        (tmp_path / "rerun.log").write_text(finish.stdout + finish.stderr)
        privacy.watch_file(tmp_path / "rerun.log")
        assert finish.returncode == 0, finish.stdout + finish.stderr
        phases.mark("second run")
        profiles, counts = asyncio.run(graph_of(server.uri))
        assert counts == dict.fromkeys(counts, 0), counts
        assert set(profiles) == set(expected)
        for record, held in profiles.items():
            assert held == [expected[record]], f"{record} after the second run: {held}"
        print(phases)
    finally:
        service.stop()
