"""Test fixtures: a real Neo4j for every test that touches Cypher.

Where the database comes from, in order:
1. NEO4J_URI, when set (a server someone else runs: we wipe it only if it is empty or was ours);
2. testcontainers with the pinned image, when a Docker engine answers (and IDGRAPH_LOCAL_DB is not neo4j-local);
3. otherwise a neo4j-local server of the test session's own, on a free port, with a fresh data directory.
Under CI=true a missing database fails the run; it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import REPO_ROOT, Settings
from app.db import localserver
from app.db.driver import AsyncDriver, create_driver
from app.db.schema import migrate
from tests.erasure_key import ERASURE_KEY

NEO4J_IMAGE = "neo4j:5.26-community"
TEST_VAR = REPO_ROOT / "var" / "test"
MARKER_LABEL = "IdgraphTestDatabase"

# The privacy watch over the whole suite: every log record of the session, and every child process's log file a test
# registers with privacy.watch_file(), is scanned at the end for phone numbers, email addresses and the raw identity
# values tests registered with privacy.remember(); any of them fails the session (tests/failure/privacy.py).
pytest_plugins = ("tests.failure.privacy",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"no Neo4j for the tests under CI=true: {reason}")
    pytest.skip(f"no Neo4j for the tests: {reason}")


@pytest.fixture(scope="session")
def neo4j_uri() -> Iterator[str]:
    external = os.environ.get("NEO4J_URI")
    if external:
        reason = localserver.wait_for_bolt(Settings(neo4j_uri=external), 60.0)
        if reason is not None:
            _fail_or_skip(f"NEO4J_URI={external} does not answer: {reason}")
        yield external
        return
    if localserver.use_docker(Settings.from_env()):
        from testcontainers.core.container import DockerContainer

        container = (
            DockerContainer(NEO4J_IMAGE)
            .with_exposed_ports(7687)
            .with_env("NEO4J_AUTH", "none")
            .with_env("NEO4J_server_memory_heap_max__size", "1G")
            .with_env("NEO4J_server_memory_pagecache_size", "256M")
        )
        with container:
            uri = f"bolt://{container.get_container_host_ip()}:{container.get_exposed_port(7687)}"
            reason = localserver.wait_for_bolt(Settings(neo4j_uri=uri), 300.0)
            if reason is not None:
                _fail_or_skip(f"the Neo4j container did not answer: {reason}")
            yield uri
        return
    _remove_abandoned_scratch_databases()
    # One scratch database per test session (several sessions may run at once on one machine): always fresh.
    server = localserver.LocalServer(home=TEST_VAR / f"neo4j-{os.getpid()}", port=free_port())
    shutil.rmtree(server.home, ignore_errors=True)
    server.home.parent.mkdir(parents=True, exist_ok=True)
    try:
        localserver.start(server, say=lambda message: None)
    except localserver.LocalDatabaseError as exc:
        _fail_or_skip(exc.message)
    try:
        yield server.uri
    finally:
        localserver.stop(server)
        shutil.rmtree(server.home, ignore_errors=True)
        for leftover in (server.log_file, server.pid_file):
            leftover.unlink(missing_ok=True)


def _remove_abandoned_scratch_databases() -> None:
    """Scratch databases of test sessions that died without cleaning up (their server is gone too)."""
    for home in TEST_VAR.glob("neo4j-*"):
        if not home.is_dir():
            continue
        server = localserver.LocalServer(home=home)
        owner = home.name.removeprefix("neo4j-")
        if server.pid() is None and not (owner.isdigit() and Path(f"/proc/{owner}").exists()):
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(neo4j_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    var_dir: Path = tmp_path_factory.mktemp("var")
    return replace(
        Settings.from_env({}),
        neo4j_uri=neo4j_uri,
        neo4j_user=os.environ.get("NEO4J_USER") or None,
        neo4j_password=os.environ.get("NEO4J_PASSWORD") or None,
        var_dir=var_dir,
        tokens_file=var_dir / "tokens.json",
        erasure_key_value=ERASURE_KEY,
    )


async def _prepare(driver: AsyncDriver, database: str) -> None:
    """Refuse to wipe a database holding data this test suite did not create, then mark it as ours."""
    records, _, _ = await driver.execute_query(
        f"OPTIONAL MATCH (m:{MARKER_LABEL}) WITH count(m) AS ours "
        "OPTIONAL MATCH (n) WHERE NOT n:SchemaMigration AND NOT n:" + MARKER_LABEL + " "
        "RETURN ours, count(n) AS others",
        database_=database,
    )
    ours, others = records[0]["ours"], records[0]["others"]
    if not ours and others and os.environ.get("IDGRAPH_TEST_WIPE") != "1":
        pytest.exit(
            f"refusing to run the tests: the database holds {others} nodes the test suite did not create. "
            "Point NEO4J_URI at a scratch database, or set IDGRAPH_TEST_WIPE=1 to wipe this one.",
            returncode=3,
        )
    await driver.execute_query(f"MERGE (:{MARKER_LABEL} {{id: 1}})", database_=database)
    await migrate(driver, database)


@pytest.fixture(scope="session")
async def session_driver(settings: Settings) -> AsyncIterator[AsyncDriver]:
    driver = create_driver(settings)
    await _prepare(driver, settings.neo4j_database)
    yield driver
    await driver.close()


@pytest.fixture
async def driver(session_driver: AsyncDriver, settings: Settings) -> AsyncDriver:
    """The session's driver on a clean graph (schema and the test marker kept)."""
    await session_driver.execute_query(
        f"MATCH (n) WHERE NOT n:SchemaMigration AND NOT n:{MARKER_LABEL} DETACH DELETE n",
        database_=settings.neo4j_database,
    )
    return session_driver
