"""Revocation without a restart, on a real `idgraph serve`: a token removed from the tokens file, or replaced by a
new token of the same name, is refused within 15 seconds while the server keeps running (issue 15, case 5)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app import auth
from tests.failure.server import Database, Served, graphql_body, serve

pytestmark = [pytest.mark.neo4j, pytest.mark.failure]

REVOCATION_DEADLINE_S = 15.0
ME = graphql_body("{ me { name scopes } }")


@dataclass(frozen=True)
class Server:
    served: Served
    tokens_file: Path
    tokens: dict[str, str]  # name -> token, written before the server started


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own (the tests rewrite its tokens file), started with the tokens already there."""
    var_dir = tmp_path_factory.mktemp("token-revocation")
    path = var_dir / "tokens.json"
    tokens = {name: auth.add_token(path, name, [auth.READ, auth.WRITE]) for name in ("revoked", "rotated")}
    served = serve(database, var_dir)  # adds its own all-scopes token to the same file
    try:
        yield Server(served, path, tokens)
    finally:
        served.stop()


def status_with(server: Served, token: str) -> int:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        return http.post("/graphql", json=ME, headers={"authorization": f"Bearer {token}"}).status_code


def name_with(server: Served, token: str) -> str:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        response = http.post("/graphql", json=ME, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    name: str = response.json()["data"]["me"]["name"]
    return name


def refused_within_deadline(server: Served, token: str) -> bool:
    """Poll until the token gets 401, for at most REVOCATION_DEADLINE_S."""
    deadline = time.monotonic() + REVOCATION_DEADLINE_S
    while time.monotonic() < deadline:
        if status_with(server, token) == 401:
            return True
        time.sleep(0.25)
    return status_with(server, token) == 401


def rewrite_without(path: Path, name: str) -> None:
    """Rewrite the tokens file as an operator's deployment would: a new file moved into place."""
    entries = [e for e in json.loads(path.read_text(encoding="utf-8")) if e["name"] != name]
    staged = path.with_name("tokens.staged")
    staged.write_text(json.dumps(entries), encoding="utf-8")
    staged.replace(path)


def test_a_token_removed_from_the_file_is_refused_without_a_restart(server: Server) -> None:
    token = server.tokens["revoked"]
    assert name_with(server.served, token) == "revoked"

    rewrite_without(server.tokens_file, "revoked")

    assert refused_within_deadline(server.served, token), "the removed token still works after 15 s"
    assert name_with(server.served, server.served.token) == "failure-suite"  # the others still work
    assert server.served.process.poll() is None


def test_a_token_replaced_by_a_new_one_of_the_same_name_is_refused_and_the_new_one_works(server: Server) -> None:
    old = server.tokens["rotated"]
    assert name_with(server.served, old) == "rotated"

    new = auth.add_token(server.tokens_file, "rotated", [auth.READ])

    assert refused_within_deadline(server.served, old), "the replaced token still works after 15 s"
    assert name_with(server.served, new) == "rotated"
    assert server.served.process.poll() is None
