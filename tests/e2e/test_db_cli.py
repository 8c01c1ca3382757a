"""`idgraph db up|down|status` as an operator types them: idempotent, and never starting what is not ours.

Each test gives the command a port and a var/ directory of its own, so a developer's database is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import localserver
from tests.conftest import free_port
from tests.e2e.conftest import START_BOUND_S, Cli

pytestmark = pytest.mark.neo4j


@pytest.fixture
def own_port_server(tmp_path: Path) -> Iterator[localserver.LocalServer]:
    """Where `db up` puts neo4j-local for NEO4J_URI=bolt://127.0.0.1:<port> and IDGRAPH_VAR_DIR=<tmp>/var."""
    server = localserver.LocalServer(home=tmp_path / "var" / "neo4j", port=free_port())
    try:
        yield server
    finally:
        localserver.stop(server)


def test_db_up_down_and_status_are_idempotent(own_port_server: localserver.LocalServer) -> None:
    idgraph = Cli.for_server(own_port_server)

    status = idgraph("db", "status")
    assert status.returncode == 1, status
    assert status.stdout.startswith("down:")

    first_up = idgraph("db", "up", timeout=START_BOUND_S)
    assert first_up.returncode == 0, first_up
    assert f"answers on {own_port_server.uri}" in first_up.stdout
    assert own_port_server.pid() is not None
    pid = own_port_server.pid()

    second_up = idgraph("db", "up", timeout=START_BOUND_S)
    assert second_up.returncode == 0, second_up
    assert f"already answers on {own_port_server.uri}" in second_up.stdout
    assert own_port_server.pid() == pid, "a second `db up` must not start a second server"

    status = idgraph("db", "status")
    assert status.returncode == 0, status
    assert status.stdout.startswith("up:")
    assert f"pid {pid}" in status.stdout

    first_down = idgraph("db", "down")
    assert first_down.returncode == 0, first_down
    assert "stopped" in first_down.stdout
    assert own_port_server.pid() is None

    second_down = idgraph("db", "down")
    assert second_down.returncode == 0, second_down
    assert "not running" in second_down.stdout

    status = idgraph("db", "status")
    assert status.returncode == 1, status


def test_db_up_against_a_database_elsewhere_that_does_not_answer_fails_and_starts_nothing(tmp_path: Path) -> None:
    # A name that cannot resolve stands in for "another machine that does not answer" (no traffic leaves loopback).
    uri = "bolt://idgraph-nonexistent.invalid:7687"
    var_dir = tmp_path / "var"
    idgraph = Cli(uri, var_dir)

    up = idgraph("db", "up")

    assert up.returncode != 0
    assert "does not answer" in up.stderr
    assert "not ours to start" in up.stderr
    assert uri in up.stderr
    assert up.stdout == ""
    assert not var_dir.exists(), "nothing may be started or written for a database on another machine"


def test_db_up_refuses_an_unknown_local_database_kind_by_name(tmp_path: Path) -> None:
    idgraph = Cli(f"bolt://127.0.0.1:{free_port()}", tmp_path / "var")
    idgraph.env["IDGRAPH_LOCAL_DB"] = "podman"

    up = idgraph("db", "up")

    assert up.returncode == 2
    assert "IDGRAPH_LOCAL_DB must be one of auto, neo4j-local, docker" in up.stderr
    assert not (tmp_path / "var").exists()
