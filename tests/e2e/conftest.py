"""End-to-end fixtures: each e2e module gets a neo4j-local of its own, so it may stop and start it at will.

These never touch the session database of tests/conftest.py nor a developer's database on 7687.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.config import REPO_ROOT, Settings
from app.db import localserver
from app.db.driver import AsyncDriver
from tests.conftest import _fail_or_skip, free_port
from tests.e2e.graphql_harness import Api, running_api, settings_with_tokens
from tests.serving import child_env

# `idgraph db up` waits for Bolt itself (180 s); this bound only keeps a hung command from hanging the suite.
START_BOUND_S = 240.0


class Cli:
    """Runs `idgraph ...` in a child process, as an operator would, with one NEO4J_URI and one IDGRAPH_VAR_DIR
    (tests/serving.py's child environment)."""

    def __init__(self, neo4j_uri: str, var_dir: Path) -> None:
        self.env = child_env(neo4j_uri, var_dir)

    @classmethod
    def for_server(cls, server: localserver.LocalServer) -> Cli:
        """The command line whose `db up|down|status` manage `server` (its var/ directory is the home's parent)."""
        return cls(server.uri, server.home.parent)

    def __call__(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localserver.LocalServer]:
    """A fresh, running neo4j-local on a free loopback port, laid out as `idgraph db up` lays out var/neo4j."""
    server = localserver.LocalServer(home=tmp_path_factory.mktemp("own") / "var" / "neo4j", port=free_port())
    try:
        localserver.start(server, say=lambda message: None)
    except localserver.LocalDatabaseError as exc:
        _fail_or_skip(exc.message)
    try:
        yield server
    finally:
        localserver.stop(server)


@pytest.fixture(scope="module")
async def graphql_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The HTTP app on the session's database with its lifespan running, once per module, with its own tokens."""
    app_settings, tokens = settings_with_tokens(settings, tmp_path_factory.mktemp("graphql-var"))
    async with running_api(app_settings, tokens) as api:
        yield api


@pytest.fixture
async def api(graphql_app: Api, driver: AsyncDriver) -> Api:
    """The module's app on a clean graph (the `driver` fixture empties it before each test)."""
    return graphql_app
