"""A token with identity:write only may write but not read customers, on GraphQL and REST: whatever answers a customer
needs identity:read too, and a request refused for it writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from app import auth
from app.config import Settings
from app.db.driver import AsyncDriver
from tests.e2e.graphql_harness import Api, running_api, settings_with_tokens

pytestmark = pytest.mark.neo4j

BASE = "/api/v2/customer-data-platform/identities"
PHONE = "+14155552671"


@dataclass(frozen=True)
class Apps:
    api: Api
    write_only: str


@pytest.fixture(scope="module")
async def apps(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Apps]:
    app_settings, tokens = settings_with_tokens(settings, tmp_path_factory.mktemp("write-only-var"))
    write_only = auth.add_token(app_settings.tokens_file, "write-only", [auth.WRITE])
    async with running_api(app_settings, tokens) as api:
        yield Apps(api, write_only)


@pytest.fixture
async def api(apps: Apps, driver: AsyncDriver) -> Apps:
    """The module's app on a clean graph (the `driver` fixture empties it before each test)."""
    return apps


def crm(source_id: str, *, tier: str = "Gold") -> dict[str, Any]:
    return {
        "source": "crm",
        "sourceId": source_id,
        "identities": [{"key": "phone_number", "value": PHONE}],
        "attributes": {"tier": tier},
    }


UPSERT = """
mutation Upsert($input: ProfileInput!) { upsertProfile(input: $input) { %s } }"""
UPSERT_MANY = """
mutation UpsertMany($inputs: [ProfileInput!]!) { upsertProfiles(inputs: $inputs) { %s } }"""
LINK = """
mutation Link($id: ID!) { linkIdentities(profileId: $id, identities: [{key: "email_address", value: "a@b.example"}]) {
  %s
} }"""
MERGE = """
mutation Merge($source: ID!, $target: ID!) { mergeProfiles(sourceProfileId: $source, targetProfileId: $target) {
  id
} }"""
UNMERGE = """
mutation Unmerge($source: ID!, $target: ID!) { unmergeProfiles(sourceProfileId: $source, targetProfileId: $target) {
  id
} }"""
UNLINK = """
mutation Unlink($id: ID!) { unlinkIdentity(profileId: $id, identity: {key: "phone_number", value: "+14155552671"}) {
  id
} }"""
CUSTOMER = "query Customer($id: ID!) { customer(profileId: $id) { id profiles { id attributes } } }"

# Ways to select the customer of an upsert: directly, aliased, in an inline fragment, in a named fragment.
CUSTOMER_SELECTIONS = [
    "created customer { profiles { attributes } }",
    "created c: customer { id }",
    "created ... on UpsertResult { customer { id } }",
    "created ...Answer } } fragment Answer on UpsertResult { customer { id",
]


async def profiles(driver: AsyncDriver) -> int:
    records, _, _ = await driver.execute_query("MATCH (p:Profile) RETURN count(p) AS n")
    return int(records[0]["n"])


async def seeded(api: Api) -> str:
    """A customer somebody else wrote: one CRM profile holding the phone number."""
    data = await api.data(UPSERT % "profile { id }", {"input": crm("C-1", tier="Platinum")})
    profile_id: str = data["upsertProfile"]["profile"]["id"]
    return profile_id


async def test_a_write_only_token_may_upsert_when_it_does_not_select_the_customer(
    api: Apps, driver: AsyncDriver
) -> None:
    data = await api.api.data(
        UPSERT % "created profile { id sourceId } rejected { key }", {"input": crm("C-2")}, token=api.write_only
    )
    assert data["upsertProfile"]["created"] is True
    assert data["upsertProfile"]["profile"]["sourceId"] == "C-2"
    many = await api.api.data(UPSERT_MANY % "created profile { id }", {"inputs": [crm("C-3")]}, token=api.write_only)
    assert [r["created"] for r in many["upsertProfiles"]] == [True]
    assert await profiles(driver) == 2


@pytest.mark.parametrize("selection", CUSTOMER_SELECTIONS)
async def test_a_write_only_token_selecting_the_customer_of_an_upsert_is_forbidden_before_writing(
    api: Apps, driver: AsyncDriver, selection: str
) -> None:
    await seeded(api.api)
    for _ in range(2):  # the second time the document runs on the prepared path (app/graphql/prepared.py)
        response = await api.api.post(UPSERT % selection, {"input": crm("C-2")}, token=api.write_only)
        body = response.json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert "identity:read" in body["errors"][0]["message"]
        assert body["data"] is None
        assert "Platinum" not in response.text
        assert await profiles(driver) == 1  # nothing was written


async def test_a_write_only_token_selecting_the_customer_of_a_batch_or_a_link_is_forbidden(
    api: Apps, driver: AsyncDriver
) -> None:
    profile_id = await seeded(api.api)
    batch = await api.api.code(UPSERT_MANY % "customer { id }", {"inputs": [crm("C-2")]}, token=api.write_only)
    link = await api.api.code(LINK % "customer { attributes }", {"id": profile_id}, token=api.write_only)
    assert (batch, link) == ("FORBIDDEN", "FORBIDDEN")
    assert await profiles(driver) == 1
    linked = await api.api.data(LINK % "profile { id }", {"id": profile_id}, token=api.write_only)
    assert linked["linkIdentities"]["profile"]["id"] == profile_id


async def test_merge_unmerge_and_unlink_answer_a_customer_so_a_write_only_token_is_forbidden_and_nothing_changes(
    api: Apps,
) -> None:
    first = await seeded(api.api)
    other = (
        await api.api.data(
            UPSERT % "profile { id }", {"input": {"source": "ivr", "identities": [], "attributes": {"channel": "ivr"}}}
        )
    )["upsertProfile"]["profile"]["id"]
    pair = {"source": other, "target": first}
    assert await api.api.code(MERGE, pair, token=api.write_only) == "FORBIDDEN"
    customer = (await api.api.data(CUSTOMER, {"id": first}))["customer"]
    assert [p["id"] for p in customer["profiles"]] == [first]  # not merged

    await api.api.data(MERGE, pair)
    assert await api.api.code(UNMERGE, pair, token=api.write_only) == "FORBIDDEN"
    assert await api.api.code(UNLINK, {"id": first}, token=api.write_only) == "FORBIDDEN"
    customer = (await api.api.data(CUSTOMER, {"id": first}))["customer"]
    assert sorted(p["id"] for p in customer["profiles"]) == sorted([first, other])  # still merged, still linked


async def test_a_token_that_may_read_and_write_gets_the_customer_of_its_upsert(api: Apps) -> None:
    await seeded(api.api)
    data = await api.api.data(UPSERT % "customer { profiles { sourceId } }", {"input": crm("C-2")})
    assert sorted(p["sourceId"] for p in data["upsertProfile"]["customer"]["profiles"]) == ["C-1", "C-2"]


def rest_body(source_id: str) -> dict[str, Any]:
    return {"source": "crm", "source_id": source_id, "identities": [{"key": "phone_number", "value": PHONE}]}


async def test_the_rest_push_of_a_write_only_token_answers_without_the_customer(api: Apps) -> None:
    await seeded(api.api)
    headers = {"authorization": f"Bearer {api.write_only}"}
    response = await api.api.http.post(BASE, json=rest_body("C-2"), headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert "customer" not in body
    assert body["profile"]["source_id"] == "C-2" and body["created"] is True
    assert body["profile"]["identities"] == [{"key": "phone_number", "value": PHONE}]  # no profile counts
    assert "Platinum" not in response.text

    full = await api.api.http.post(
        BASE, json=rest_body("C-3"), headers={"authorization": f"Bearer {api.api.tokens.all}"}
    )
    assert sorted(p["source_id"] for p in full.json()["customer"]["profiles"]) == ["C-1", "C-2", "C-3"]


async def test_the_rest_merge_of_a_write_only_token_is_forbidden_and_merges_nothing(api: Apps) -> None:
    first = await seeded(api.api)
    other = (
        await api.api.data(
            UPSERT % "profile { id }", {"input": {"source": "ivr", "identities": [], "attributes": {"channel": "ivr"}}}
        )
    )["upsertProfile"]["profile"]["id"]
    response = await api.api.http.post(
        f"{BASE}/merge",
        json={"source_profile_id": other, "target_profile_id": first},
        headers={"authorization": f"Bearer {api.write_only}"},
    )
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    customer = (await api.api.data(CUSTOMER, {"id": first}))["customer"]
    assert [p["id"] for p in customer["profiles"]] == [first]
