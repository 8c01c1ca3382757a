"""Failure-suite fixtures: the privacy watch over the whole package, and one real `idgraph serve` on the session's
database, shared by the modules that talk HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from tests.failure import privacy
from tests.failure.server import Database, Served, serve


@pytest.fixture(scope="package", autouse=True)
def privacy_watch() -> Iterator[privacy.PrivacyWatch]:
    """Watch every log record and child-process log of the failure suite at the suite's levels. The whole-suite
    plugin (tests/conftest.py loads tests.failure.privacy) owns the watch and checks it when the session finishes,
    whatever order the tests ran in; without the plugin the check runs here, at the end of the package."""
    existing = privacy.current()
    watch = existing if existing is not None else privacy.start()
    levels = privacy.raise_levels()
    yield watch
    privacy.restore_levels(levels)
    if existing is not None:
        return  # the whole-suite plugin owns it and checks it at the end of the session
    privacy.stop()
    if watch.findings():
        pytest.fail("privacy watch: " + watch.report(), pytrace=False)


@pytest.fixture(scope="package")
def database(settings: Settings, session_driver: AsyncDriver) -> Database:
    """The session's database, migrated (session_driver applies the schema)."""
    return Database(settings.neo4j_uri, settings.neo4j_user, settings.neo4j_password, settings.neo4j_database)


@pytest.fixture(scope="package")
def served(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real `idgraph serve` on the session's database, started once for the failure suite."""
    service = serve(database, tmp_path_factory.mktemp("failure-serve"))
    try:
        yield service
    finally:
        service.stop()
