from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import queries
from app.errors import InstallationError


@pytest.fixture
def no_cypher_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """An installation without the Cypher files: neither the package nor a checkout holds them."""
    monkeypatch.setattr(queries, "_CHECKOUT_DIR", tmp_path / "cypher")
    queries.cypher_dir.cache_clear()
    queries.query.cache_clear()
    yield
    queries.cypher_dir.cache_clear()
    queries.query.cache_clear()


@pytest.mark.usefixtures("no_cypher_files")
def test_missing_cypher_files_are_reported_as_an_incomplete_installation_not_a_database_outage() -> None:
    with pytest.raises(InstallationError, match="Cypher statements are missing") as refused:
        queries.migrations()
    assert "unavailable" not in refused.value.message
    with pytest.raises(InstallationError):
        queries.query("resolve_snapshot")


def test_the_statements_are_found_in_the_checkout_and_every_migration_is_numbered() -> None:
    assert (queries.cypher_dir() / "resolve_snapshot.cypher").is_file()
    versions = [m.version for m in queries.migrations()]
    assert versions == sorted(versions) and versions[0] == 1
