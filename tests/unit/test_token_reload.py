"""The tokens file is read again while serving: removed or replaced tokens stop working without a restart, and a
bad new file refuses every token instead of keeping the old ones."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app import auth
from app.auth import TokenFile
from app.errors import InvalidInput


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "tokens.json"


def remove(path: Path, name: str) -> None:
    entries = [e for e in json.loads(path.read_text()) if e["name"] != name]
    path.write_text(json.dumps(entries))


def test_a_removed_token_is_refused_once_the_file_is_read_again(path: Path, clock: Clock) -> None:
    kept = auth.add_token(path, "kept", [auth.READ])
    revoked = auth.add_token(path, "revoked", [auth.READ, auth.WRITE])
    tokens = TokenFile(path, interval_s=2.0, clock=clock)
    assert tokens.verify(revoked) is not None

    remove(path, "revoked")
    clock.now += 2.0

    assert tokens.verify(revoked) is None
    principal = tokens.verify(kept)
    assert principal is not None and principal.name == "kept"


def test_the_file_is_read_at_most_once_per_interval(path: Path, clock: Clock) -> None:
    token = auth.add_token(path, "ops", [auth.READ])
    tokens = TokenFile(path, interval_s=2.0, clock=clock)
    remove(path, "ops")
    clock.now += 1.0
    assert tokens.verify(token) is not None  # not looked at yet
    clock.now += 1.0
    assert tokens.verify(token) is None


def test_a_replaced_token_of_the_same_name_refuses_the_old_one_and_accepts_the_new_one(
    path: Path, clock: Clock
) -> None:
    old = auth.add_token(path, "middleware", [auth.WRITE])
    tokens = TokenFile(path, interval_s=2.0, clock=clock)
    new = auth.add_token(path, "middleware", [auth.WRITE])
    clock.now += 2.5

    assert tokens.verify(old) is None
    principal = tokens.verify(new)
    assert principal is not None and principal.scopes == frozenset({auth.WRITE})


def test_an_invalid_new_file_refuses_every_token_until_it_is_fixed(
    path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    token = auth.add_token(path, "ops", [auth.READ])
    good = path.read_text()
    tokens = TokenFile(path, interval_s=2.0, clock=clock)

    path.write_text(good[: len(good) // 2])  # half-written
    clock.now += 2.0
    with caplog.at_level(logging.WARNING, logger="app.auth"):
        assert tokens.verify(token) is None
    assert any("every token is refused" in r.getMessage() for r in caplog.records)
    assert token not in caplog.text

    path.write_text(good)
    clock.now += 2.0
    assert tokens.verify(token) is not None


def test_a_file_with_a_bad_entry_refuses_every_token(path: Path, clock: Clock) -> None:
    token = auth.add_token(path, "ops", [auth.READ])
    tokens = TokenFile(path, interval_s=2.0, clock=clock)
    entries = json.loads(path.read_text())
    entries.append({"name": "typo", "token_sha256": "not-hex", "scopes": [auth.READ]})
    path.write_text(json.dumps(entries))
    clock.now += 2.0
    assert tokens.verify(token) is None


def test_an_unreadable_file_refuses_every_token(path: Path, clock: Clock) -> None:
    token = auth.add_token(path, "ops", [auth.READ])
    tokens = TokenFile(path, interval_s=2.0, clock=clock)
    path.unlink()
    path.mkdir()  # reading it fails with an OSError, whoever runs the test
    clock.now += 2.0
    assert tokens.verify(token) is None


def test_a_deleted_file_means_no_token_is_valid(path: Path, clock: Clock) -> None:
    token = auth.add_token(path, "ops", [auth.READ])
    tokens = TokenFile(path, interval_s=2.0, clock=clock)
    path.unlink()
    clock.now += 2.0
    assert tokens.verify(token) is None


def test_a_bad_file_at_start_up_is_refused_with_its_name(path: Path, clock: Clock) -> None:
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match=r"tokens\.json"):
        TokenFile(path, clock=clock)
