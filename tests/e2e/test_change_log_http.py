"""Who asked, over HTTP: the change log names the token behind a GraphQL or REST write with the request's id
(X-Request-Id), and the CRM webhook's erasures as `crm-webhook` with the erasure's request id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.domain.changes import ChangeType
from tests.e2e.graphql_harness import Tokens
from tests.e2e.rest_harness import BASE, WEBHOOK, app_settings, bearer, serving, signed

pytestmark = pytest.mark.neo4j

UPSERT = """mutation($input: ProfileInput!) { upsertProfile(input: $input) { profile { id } } }"""
MERGE = (
    """mutation($s: ID!, $t: ID!) { mergeProfiles(sourceProfileId: $s, targetProfileId: $t, reason: "same") { id } }"""
)


@pytest.fixture(scope="module")
def http_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Tokens]:
    return app_settings(settings, tmp_path_factory.mktemp("change-log-http"))


@pytest.fixture
def repo(driver: AsyncDriver, settings: Settings) -> Neo4jRepository:
    return Neo4jRepository(driver, token_key=b"t" * 32, database=settings.neo4j_database, timeout_s=30.0)


@pytest.fixture
async def http(driver: AsyncDriver, http_settings: tuple[Settings, Tokens]) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(http_settings[0]) as client:
        yield client


async def test_each_edge_records_its_actor_and_request_id(
    http: httpx.AsyncClient, http_settings: tuple[Settings, Tokens], repo: Neo4jRepository
) -> None:
    tokens = http_settings[1]
    variables = {
        "input": {
            "source": "crm",
            "sourceId": "C-1",
            "identities": [{"key": "email_address", "value": "a@example.com"}],
        }
    }
    sent = await http.post(
        "/graphql",
        json={"query": UPSERT, "variables": variables},
        headers={**bearer(tokens.write), "x-request-id": "gql-request-0001"},
    )
    assert sent.status_code == 200 and "errors" not in sent.json(), sent.text
    a = sent.json()["data"]["upsertProfile"]["profile"]["id"]

    pushed = await http.post(
        BASE,
        json={"source": "web", "identities": [{"key": "phone_number", "value": "+14155552671"}]},
        headers={**bearer(tokens.all), "x-request-id": "rest-request-0002"},
    )
    assert pushed.status_code == 201, pushed.text
    b = pushed.json()["profile"]["id"]

    merged = await http.post(
        "/graphql",
        json={"query": MERGE, "variables": {"s": b, "t": a}},
        headers={**bearer(tokens.all), "x-request-id": "gql-request-0003"},
    )
    assert merged.status_code == 200 and "errors" not in merged.json(), merged.text

    raw, headers = signed(
        {"event_id": "evt-1", "identities": [{"key": "email_address", "value": "a@example.com"}], "reason": "opt-out"}
    )
    erased = await http.post(WEBHOOK, content=raw, headers=headers)
    assert erased.status_code == 200, erased.text

    events = [(e.type, e.actor, e.request_id, e.reason) for e in await repo.changes(after=0, limit=100)]
    assert events == [
        (ChangeType.PROFILE_CREATED, "writer", "gql-request-0001", None),
        (ChangeType.PROFILE_CREATED, "steward", "rest-request-0002", None),
        (ChangeType.MERGE, "steward", "gql-request-0003", "same"),
        (ChangeType.CUSTOMER_ERASED, "crm-webhook", "webhook:evt-1", "opt-out"),
    ]
