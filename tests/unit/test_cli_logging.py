"""`idgraph serve --log-level` governs every logger of the process, so `warning` turns the access log off."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.cli import main as cli
from tests.erasure_key import ERASURE_KEY


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[dict[str, Any]]:
    """Run `main` up to uvicorn.run, which records its arguments instead of serving; the root level is restored."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(kwargs, root=logging.getLogger().level))
    monkeypatch.setenv("IDGRAPH_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("IDGRAPH_ERASURE_KEY", ERASURE_KEY)
    saved = logging.getLogger().level
    yield seen
    logging.getLogger().setLevel(saved)


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["serve"], logging.INFO),
        (["serve", "--log-level", "warning"], logging.WARNING),
        (["serve", "--log-level", "error"], logging.ERROR),
        (["-v", "serve", "--log-level", "warning"], logging.DEBUG),
    ],
)
def test_serve_log_level_is_the_root_level(served: dict[str, Any], argv: list[str], level: int) -> None:
    assert cli.main(argv) == 0
    assert served["root"] == level
    assert not logging.getLogger("idgraph.access").isEnabledFor(logging.INFO) or level <= logging.INFO


def test_serve_passes_its_level_to_uvicorn(served: dict[str, Any]) -> None:
    assert cli.main(["serve", "--log-level", "warning", "--port", "8123"]) == 0
    assert served["log_level"] == "warning"
    assert served["port"] == 8123
    assert served["access_log"] is False
