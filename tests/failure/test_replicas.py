"""Two `idgraph serve` replicas and the CLI on one database: an erasure made through one replica holds on the other
and in `idgraph ingest`, because everything it leaves behind (receipt, suppression list, key fingerprint) is in
Neo4j, not in the process that made it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import REPO_ROOT
from app.db.driver import AsyncDriver
from tests.failure import privacy
from tests.failure.server import Database, Served, child_env, error_codes, graphql_body, serve

pytestmark = [pytest.mark.neo4j, pytest.mark.failure, pytest.mark.timeout(180)]

EMAIL = "replica.subject@example.org"
PHONE = "+1 720 555 0133"
REST = "/api/v2/customer-data-platform/identities"
UPSERT = "mutation($input: ProfileInput!) { upsertProfile(input: $input) { created profile { id } } }"


@pytest.fixture(autouse=True)
def _remember_values() -> None:
    privacy.remember([EMAIL, PHONE])


@pytest.fixture
def other_replica(database: Database, tmp_path: Path) -> Iterator[Served]:
    replica = serve(database, tmp_path / "replica-b")
    try:
        yield replica
    finally:
        replica.stop()


def gql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = http.post("/graphql", json=graphql_body(query, variables))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def record(source_id: str, *identities: tuple[str, str]) -> dict[str, Any]:
    return {
        "source": "crm",
        "sourceId": source_id,
        "identities": [{"key": k, "value": v} for k, v in identities],
        "attributes": {"tier": "Gold"},
    }


async def count(driver: AsyncDriver, query: str) -> int:
    records, _, _ = await driver.execute_query(query, routing_="r")
    return int(records[0][0])


async def test_an_erasure_through_one_replica_holds_on_the_other_and_in_the_cli(
    served: Served, other_replica: Served, database: Database, driver: AsyncDriver, tmp_path: Path
) -> None:
    with served.client() as a, other_replica.client() as b:
        assert b.get("/readyz").status_code == 200
        stored = gql(a, UPSERT, input=record("R-1", ("email_address", EMAIL), ("phone_number", PHONE)))
        profile_id = stored["data"]["upsertProfile"]["profile"]["id"]
        erased = gql(
            a,
            'mutation($p: ID!) { eraseCustomer(profileId: $p, requestId: "dsr-r1", reason: "opt-out") { status } }',
            p=profile_id,
        )
        assert erased["data"]["eraseCustomer"]["status"] == "COMPLETED", erased

        # The other replica: the erased record, the erased values under a new record, the REST push, the request id.
        assert error_codes(gql(b, UPSERT, input=record("R-1"))) == ["SUPPRESSED"]
        assert error_codes(gql(b, UPSERT, input=record("R-2", ("email_address", EMAIL)))) == ["SUPPRESSED"]
        pushed = b.post(REST, json={"source": "crm", "identities": [{"key": "phone_number", "value": PHONE}]})
        assert (pushed.status_code, error_codes(pushed.json())) == (422, ["SUPPRESSED"]), pushed.text
        other = gql(b, UPSERT, input=record("R-3", ("email_address", "someone.else@example.org")))
        reused = gql(
            b,
            'mutation($p: ID!) { eraseCustomer(profileId: $p, requestId: "dsr-r1", reason: "x") { status } }',
            p=other["data"]["upsertProfile"]["profile"]["id"],
        )
        assert error_codes(reused) == ["CONFLICT"], reused

    lines = tmp_path / "late-sync.jsonl"
    lines.write_text(
        json.dumps({"source": "crm", "source_id": "R-4", "identities": [{"key": "phone_number", "value": PHONE}]})
        + "\n"
    )
    ingest = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(lines), "--rejects", str(tmp_path / "rejects.jsonl")],
        cwd=REPO_ROOT,
        env=child_env(database, tmp_path / "cli"),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert ingest.returncode == 0, ingest.stderr
    rejected = [json.loads(line)["reason"] for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert rejected == ["SUPPRESSED"]
    stored_ids = "MATCH (p:Profile) WHERE p.source_id IN ['R-1', 'R-2', 'R-4'] RETURN count(p)"
    assert await count(driver, stored_ids) == 0
    erased_values = (
        "MATCH (i:Identity) WHERE i.key IN ['email_address', 'phone_number'] AND i.value IN $v RETURN count(i)"
    )
    records, _, _ = await driver.execute_query(erased_values, v=[EMAIL, "+17205550133"], routing_="r")
    assert records[0][0] == 0
