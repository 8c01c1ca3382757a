"""Issue 15, cases 3 and 4, with real processes on the session's database: a process whose erasure key is not the
database's (a fresh key generated into another IDGRAPH_VAR_DIR, or another replica's IDGRAPH_ERASURE_KEY) writes
nothing, and an empty key file is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest

from app.config import REPO_ROOT
from app.db.driver import AsyncDriver
from tests.failure.server import Database, Served, child_env, error_codes, graphql_body, serve

pytestmark = pytest.mark.neo4j

PHONE = "+14155552671"
EMAIL = "erased.person@example.com"
OTHER_KEY = "another-replica-s-erasure-key-0123456789"

UPSERT = """
mutation Upsert($input: ProfileInput!) {
  upsertProfile(input: $input) { profile { id } created }
}
"""
ERASE = """
mutation Erase($id: ID!) {
  eraseCustomer(profileId: $id, requestId: "key-suite-1", reason: "opt-out") { status }
}
"""


@pytest.fixture
async def clean(driver: AsyncDriver) -> AsyncIterator[AsyncDriver]:
    """The clean graph; the key node is removed afterwards too, so later tests start without it."""
    yield driver
    await driver.execute_query("MATCH (k:ErasureKey) DETACH DELETE k")


def idgraph(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def without_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "IDGRAPH_ERASURE_KEY"}


def jsonl(path: Path, *records: Mapping[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def count(driver: AsyncDriver, statement: str) -> int:
    records, _, _ = await driver.execute_query(statement)
    return int(records[0][0])


def refusal_lines(stderr: str, command: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"idgraph {command}:")]


async def test_ingest_with_a_freshly_generated_key_exits_2_and_stores_nothing(
    clean: AsyncDriver, database: Database, tmp_path: Path
) -> None:
    env = child_env(database, tmp_path / "var")
    person = jsonl(
        tmp_path / "person.jsonl",
        {"source": "crm", "source_id": "C-1", "identities": [{"key": "phone_number", "value": PHONE}]},
    )
    assert idgraph(env, "ingest", str(person)).returncode == 0
    records, _, _ = await clean.execute_query("MATCH (p:Profile) RETURN p.id AS id")
    erased = idgraph(env, "erase", "--profile", records[0]["id"], "--request-id", "gdpr-1", "--reason", "opt-out")
    assert erased.returncode == 0, erased.stderr

    other_var = tmp_path / "other-var"  # no IDGRAPH_ERASURE_KEY: a key is generated there
    stale = jsonl(
        tmp_path / "stale.jsonl",
        *[
            {"source": "ivr", "source_id": f"call-{n}", "identities": [{"key": "phone_number", "value": value}]}
            for n, value in enumerate(["(415) 555-2671", "+14155550100", "+14155550101"])
        ],
    )
    run = idgraph(without_key(child_env(database, other_var)), "ingest", str(stale), "--batch-size", "1")

    assert run.returncode == 2, run.stdout + run.stderr
    [line] = refusal_lines(run.stderr, "ingest")
    assert "erasure key does not match" in line and PHONE not in run.stderr + run.stdout
    assert (other_var / "erasure.key").is_file()
    assert await count(clean, "MATCH (p:Profile) RETURN count(p)") == 0
    assert await count(clean, "MATCH (i:Identity) RETURN count(i)") == 0


async def test_a_replica_with_another_key_is_unready_and_refuses_to_store_an_erased_email(
    clean: AsyncDriver, database: Database, served: Served, tmp_path: Path
) -> None:
    with served.client() as http:
        body = http.post(
            "/graphql",
            json=graphql_body(
                UPSERT, {"input": {"source": "crm", "identities": [{"key": "email_address", "value": EMAIL}]}}
            ),
        ).json()
        assert body.get("data"), body
        profile_id = body["data"]["upsertProfile"]["profile"]["id"]
        assert http.post("/graphql", json=graphql_body(ERASE, {"id": profile_id})).json()["data"] is not None
        assert http.get("/readyz").status_code == 200

    other = serve(database, tmp_path / "replica", ready=False, IDGRAPH_ERASURE_KEY=OTHER_KEY)
    try:
        with other.client() as http:
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert "erasure key does not match" in ready.json()["reason"]
            sent = {"source": "webchat", "identities": [{"key": "email_address", "value": EMAIL}]}
            answer = http.post("/graphql", json=graphql_body(UPSERT, {"input": sent}))
            assert error_codes(answer.json()) == ["DATABASE_UNAVAILABLE"]
            rest = http.get("/healthz")
            assert rest.status_code == 200
    finally:
        other.stop()
    assert await count(clean, "MATCH (p:Profile) RETURN count(p)") == 0
    assert await count(clean, "MATCH (i:Identity) RETURN count(i)") == 0
    with httpx.Client(base_url=served.base_url, timeout=10.0) as http:
        assert http.get("/readyz").status_code == 200  # the replica with the database's key stays ready


def test_an_empty_erasure_key_file_is_refused(database: Database, tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "erasure.key").write_text("")
    env = without_key(child_env(database, var))
    person = jsonl(tmp_path / "p.jsonl", {"source": "crm", "identities": [{"key": "phone_number", "value": PHONE}]})
    for args in (["ingest", str(person)], ["serve", "--port", "0"]):
        run = idgraph(env, *args)
        assert run.returncode == 2, run.stdout + run.stderr
        [line] = refusal_lines(run.stderr, args[0])
        assert "erasure.key" in line and "empty" in line
