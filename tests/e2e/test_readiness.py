"""/healthz and /readyz of a real `idgraph serve` (uvicorn, lifespan, the driver's pool) across a database outage.

The service runs as a child process, as `make run` starts it, against a neo4j-local of this module's own, which the
tests stop and start again underneath it with `idgraph db down` and `idgraph db up`, as `make db-down|db-up` do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from app.db import localserver
from app.db.driver import create_driver
from app.db.queries import migrations
from app.db.schema import migrate
from tests.e2e.conftest import START_BOUND_S, Cli
from tests.serving import ServeProcess, child_env, serve_process

pytestmark = pytest.mark.neo4j

READINESS_BOUND_S = 2.0  # issue 2: /readyz turns 503 within 2 seconds of the database going away
RECOVERY_WAIT_S = 60.0


class Service:
    """One `idgraph serve` child process and an HTTP client for it."""

    def __init__(self, served: ServeProcess) -> None:
        self.served = served
        self.process = served.process
        self.http = httpx.Client(base_url=served.base_url, timeout=30.0)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def log_tail(self) -> str:
        return self.served.log_tail()


@pytest.fixture(scope="module")
def service(own_server: localserver.LocalServer) -> Iterator[Service]:
    var_dir = own_server.home.parent
    with serve_process(child_env(own_server.uri, var_dir), var_dir / "serve.log", bound_s=30.0) as served:
        service = Service(served)
        try:
            yield service
        finally:
            service.http.close()


def _migrate(server: localserver.LocalServer) -> None:
    async def run() -> None:
        driver = create_driver(Settings(neo4j_uri=server.uri))
        try:
            await migrate(driver, "neo4j")
        finally:
            await driver.close()

    asyncio.run(run())


@pytest.fixture
def migrated(own_server: localserver.LocalServer) -> localserver.LocalServer:
    """The module's database, running (started again if a failed test left it down) and migrated."""
    localserver.start(own_server, say=lambda message: None)
    _migrate(own_server)
    return own_server


def test_readyz_is_503_naming_the_pending_migrations_until_migrate_runs(
    own_server: localserver.LocalServer, service: Service
) -> None:
    async def forget_applied_migrations() -> None:  # a no-op on the module's fresh database
        driver = create_driver(Settings(neo4j_uri=own_server.uri))
        try:
            await driver.execute_query("MATCH (m:SchemaMigration) DETACH DELETE m")
        finally:
            await driver.close()

    asyncio.run(forget_applied_migrations())

    response = service.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "idgraph migrate" in body["reason"]
    assert body["pending"] == [f"{m.version:03d}_{m.name}" for m in migrations()]

    _migrate(own_server)

    response = service.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema_version": max(m.version for m in migrations())}


def test_healthz_and_readyz_answer_200_when_the_database_is_up_and_migrated(
    migrated: localserver.LocalServer, service: Service
) -> None:
    assert service.get("/healthz").json() == {"status": "ok"}
    assert service.get("/readyz").status_code == 200


def _timed_get(service: Service, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = service.get(path)
    return response, time.monotonic() - started


def test_readyz_turns_503_within_2s_when_the_database_stops_and_200_again_when_it_returns(
    migrated: localserver.LocalServer, service: Service
) -> None:
    for _ in range(3):  # pooled connections exist, as they do in a service that has been serving
        assert service.get("/readyz").status_code == 200
    pid = service.process.pid
    idgraph = Cli.for_server(migrated)

    down = idgraph("db", "down")
    assert down.returncode == 0, down
    assert migrated.pid() is None

    # The first check meets the pool's now-dead connections; the second one must open a new connection.
    for attempt in ("first", "second"):
        response, elapsed = _timed_get(service, "/readyz")
        assert response.status_code == 503, f"{attempt} check: {response.status_code} {response.text}"
        assert response.json()["status"] == "unavailable"
        assert response.json()["reason"], f"{attempt} check: no reason given"
        assert elapsed < READINESS_BOUND_S, f"{attempt} check took {elapsed:.2f}s"
    assert service.get("/healthz").status_code == 200
    assert service.process.poll() is None, f"the service exited:\n{service.log_tail()}"

    up = idgraph("db", "up", timeout=START_BOUND_S)
    assert up.returncode == 0, up

    deadline = time.monotonic() + RECOVERY_WAIT_S
    while (response := service.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, f"/readyz still {response.status_code} {response.text} after restart"
        time.sleep(0.5)
    assert service.process.poll() is None
    assert service.process.pid == pid
