"""An erased person stays erased on every write path of a real `idgraph serve` and of the real CLI: their source
record cannot be written again (GraphQL single and batch, REST push, `idgraph ingest`), a record carrying one of
their values is refused whole, and an erasure request id belongs to one subject (and `webhook:` ids to the webhook).
Issue 15, cases 1 and 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import REPO_ROOT
from app.db.driver import AsyncDriver
from tests.failure import privacy
from tests.failure.server import Database, Served, child_env, error_codes, graphql_body

pytestmark = [pytest.mark.neo4j, pytest.mark.failure, pytest.mark.timeout(120)]

EMAIL = "erased.person@example.org"
PHONE = "+1 303 555 0187"
NEW_EMAIL = "someone.new@example.org"
REST = "/api/v2/customer-data-platform/identities"

UPSERT = """mutation($input: ProfileInput!) {
  upsertProfile(input: $input) { created profile { id } }
}"""
UPSERT_MANY = """mutation($inputs: [ProfileInput!]!) { upsertProfiles(inputs: $inputs) { created profile { id } } }"""
ERASE = """mutation($profileId: ID!, $requestId: ID!) {
  eraseCustomer(profileId: $profileId, requestId: $requestId, reason: "GDPR Art. 17") {
    requestId status profilesDeleted identitiesDeleted
  }
}"""


@pytest.fixture(autouse=True)
def _remember_values() -> None:
    privacy.remember([EMAIL, PHONE, NEW_EMAIL])


def gql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = http.post("/graphql", json=graphql_body(query, variables))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def crm_record(source_id: str, *identities: tuple[str, str], **attributes: Any) -> dict[str, Any]:
    return {
        "source": "crm",
        "sourceId": source_id,
        "identities": [{"key": k, "value": v} for k, v in identities],
        "attributes": attributes,
    }


def erased_crm_record(http: httpx.Client) -> str:
    """Store crm/C-77 with the person's email and phone, erase its customer, and return the erased profile id."""
    stored = gql(http, UPSERT, input=crm_record("C-77", ("email_address", EMAIL), ("phone_number", PHONE)))
    profile_id = str(stored["data"]["upsertProfile"]["profile"]["id"])
    erased = gql(http, ERASE, profileId=profile_id, requestId="dsr-77")
    assert erased["data"]["eraseCustomer"]["profilesDeleted"] == 1, erased
    return profile_id


async def profiles_of(driver: AsyncDriver, source_id: str) -> int:
    records, _, _ = await driver.execute_query(
        "MATCH (p:Profile {source: 'crm', source_id: $sid}) RETURN count(p) AS n", sid=source_id, routing_="r"
    )
    return int(records[0]["n"])


async def test_an_erased_source_record_is_refused_on_every_write_path(
    served: Served, driver: AsyncDriver, database: Database, tmp_path: Path
) -> None:
    with served.client() as http:
        erased_id = erased_crm_record(http)

        # The CRM's next nightly sync of the erased record, with no identity at all: only a name.
        again = gql(http, UPSERT, input=crm_record("C-77", name="Erased Person"))
        assert error_codes(again) == ["SUPPRESSED"], again
        batch = gql(http, UPSERT_MANY, inputs=[crm_record("C-78", name="x"), crm_record("C-77", name="y")])
        assert error_codes(batch) == ["SUPPRESSED"], batch
        pushed = http.post(REST, json={"source": "crm", "source_id": "C-77", "attributes": {"name": "Erased"}})
        assert (pushed.status_code, error_codes(pushed.json())) == (422, ["SUPPRESSED"]), pushed.text
        linked = gql(
            http,
            """mutation($id: ID!) { linkIdentities(profileId: $id, identities: [{key: "phone_number",
               value: "+1 303 555 0100"}]) { created } }""",
            id=erased_id,
        )
        assert error_codes(linked) == ["SUPPRESSED"], linked

    lines = tmp_path / "sync.jsonl"
    lines.write_text(
        json.dumps({"source": "crm", "source_id": "C-77", "identities": [], "attributes": {"name": "Erased"}})
        + "\n"
        + json.dumps({"source": "crm", "source_id": "C-79", "identities": [{"key": "email_address", "value": EMAIL}]})
        + "\n"
    )
    rejects = tmp_path / "sync.rejects.jsonl"
    ingest = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(lines), "--rejects", str(rejects)],
        cwd=REPO_ROOT,
        env=child_env(database, served.log.parent),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert ingest.returncode == 0, ingest.stderr
    refused = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in refused] == [(1, "SUPPRESSED"), (2, "SUPPRESSED")]
    for source_id in ("C-77", "C-78", "C-79"):
        assert await profiles_of(driver, source_id) == 0, f"crm/{source_id} was stored"


async def test_a_record_carrying_an_erased_value_is_refused_whole_under_any_record_id(
    served: Served, driver: AsyncDriver
) -> None:
    with served.client() as http:
        erased_crm_record(http)
        mixed = gql(
            http,
            UPSERT,
            input=crm_record("C-80", ("email_address", f" {EMAIL.upper()} "), ("email_address", NEW_EMAIL)),
        )
        assert error_codes(mixed) == ["SUPPRESSED"], mixed
    assert await profiles_of(driver, "C-80") == 0


async def test_an_erasure_request_id_answers_its_own_subject_and_refuses_another(
    served: Served, driver: AsyncDriver
) -> None:
    with served.client() as http:
        erased_id = erased_crm_record(http)
        other = gql(http, UPSERT, input=crm_record("C-81", ("email_address", NEW_EMAIL)))
        other_id = other["data"]["upsertProfile"]["profile"]["id"]

        repeated = gql(http, ERASE, profileId=erased_id, requestId="dsr-77")
        assert repeated["data"]["eraseCustomer"]["requestId"] == "dsr-77"
        assert repeated["data"]["eraseCustomer"]["profilesDeleted"] == 1

        reused = gql(http, ERASE, profileId=other_id, requestId="dsr-77")
        assert error_codes(reused) == ["CONFLICT"], reused
        assert "dsr-77" in reused["errors"][0]["message"]
        assert await profiles_of(driver, "C-81") == 1, "a reused request id erased another customer"

        for_webhook = gql(http, ERASE, profileId=other_id, requestId="webhook:evt-1")
        assert error_codes(for_webhook) == ["INVALID_INPUT"], for_webhook
        for_purge = gql(http, ERASE, profileId=other_id, requestId=f"purge:2026-12-05:{other_id}")
        assert error_codes(for_purge) == ["INVALID_INPUT"], for_purge
        deleted = http.delete(f"{REST}/{other_id}", headers={"idempotency-key": "webhook:evt-2"})
        assert (deleted.status_code, error_codes(deleted.json())) == (400, ["INVALID_INPUT"]), deleted.text
    assert await profiles_of(driver, "C-81") == 1
