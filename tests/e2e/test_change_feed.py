"""The change feed over HTTP: GraphQL `changes` and `customerHistory`, REST GET .../changes, behind identity:audit,
with the app's lifespan running against the real Neo4j and events written by real mutations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.graphql_harness import Api
from tests.e2e.rest_harness import assert_error, bearer

pytestmark = pytest.mark.neo4j

CHANGES = "/api/v2/customer-data-platform/changes"

UPSERT = """mutation Up($input: ProfileInput!) { upsertProfile(input: $input) { profile { id } } }"""
MERGE = """mutation M($s: ID!, $t: ID!) {
  mergeProfiles(sourceProfileId: $s, targetProfileId: $t, reason: "same person") { id }
}"""
FIELDS = "cursor type profileIds customerBefore customerAfter actor requestId reason at"
CHANGES_QUERY = f"""query Feed($after: String, $limit: Int, $types: [ChangeType!], $profileId: ID) {{
  changes(after: $after, limit: $limit, types: $types, profileId: $profileId) {{ events {{ {FIELDS} }} nextCursor }}
}}"""
HISTORY_QUERY = f"""query History($id: ID!) {{
  customerHistory(profileId: $id) {{ customerId events {{ {FIELDS} }} }}
}}"""

SECRETS = ("+14155550111", "feed.one@example.com", "+14155550122", "Platinum-feed")


async def two_merged(api: Api) -> tuple[str, str]:
    """Two profiles with distinctive values, merged: events PROFILE_CREATED, PROFILE_CREATED, MERGE (and more if the
    writer records them)."""
    ids = []
    for n, (phone, extra) in enumerate([(SECRETS[0], SECRETS[1]), (SECRETS[2], None)]):
        identities = [{"key": "phone_number", "value": phone}]
        if extra:
            identities.append({"key": "email_address", "value": extra})
        data = await api.data(
            UPSERT,
            {
                "input": {
                    "source": "crm",
                    "sourceId": f"feed-{n}",
                    "identities": identities,
                    "attributes": {"tier": SECRETS[3]},
                }
            },
        )
        ids.append(data["upsertProfile"]["profile"]["id"])
    await api.data(MERGE, {"s": ids[1], "t": ids[0]})
    return ids[0], ids[1]


async def feed(api: Api, **variables: Any) -> dict[str, Any]:
    page: dict[str, Any] = (await api.data(CHANGES_QUERY, variables))["changes"]
    return page


async def test_a_poller_reads_every_event_once_in_cursor_order_and_keeps_its_place(api: Api) -> None:
    target, source = await two_merged(api)
    everything = await feed(api)
    events = everything["events"]
    assert [e["type"] for e in events][:2] == ["PROFILE_CREATED", "PROFILE_CREATED"]
    assert events[-1]["type"] == "MERGE" and events[-1]["profileIds"] == [source, target]
    assert events[-1]["actor"] == "steward" and events[-1]["reason"] == "same person"
    assert everything["nextCursor"] == events[-1]["cursor"]
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)

    paged: list[str] = []
    after = None
    for _ in range(len(events) + 1):
        page = await feed(api, after=after, limit=1)
        paged += [e["cursor"] for e in page["events"]]
        after = page["nextCursor"]
    assert paged == [e["cursor"] for e in events]
    assert after == events[-1]["cursor"]  # an empty page gives back the cursor it was given

    merges = await feed(api, types=["MERGE"])
    assert [e["type"] for e in merges["events"]] == ["MERGE"]
    of_source = await feed(api, profileId=source)
    assert all(source in e["profileIds"] for e in of_source["events"]) and of_source["events"]
    text = str(everything)
    for secret in SECRETS:
        assert secret not in text


async def test_the_history_of_a_customer_is_newest_first_with_actor_and_time(api: Api) -> None:
    target, source = await two_merged(api)
    history = (await api.data(HISTORY_QUERY, {"id": source}))["customerHistory"]
    assert history["customerId"] == target
    [merge] = [e for e in history["events"] if e["type"] == "MERGE"]
    assert merge["profileIds"] == [source, target] and merge["actor"] == "steward" and merge["at"]
    cursors = [int(e["cursor"]) for e in history["events"]]
    assert cursors == sorted(cursors, reverse=True)
    assert (await api.data(HISTORY_QUERY, {"id": "no-such-profile"}))["customerHistory"] is None


@pytest.mark.parametrize(
    ("variables", "needle"),
    [
        ({"after": "not-a-cursor"}, "after is not a cursor"),
        ({"after": "-5"}, "after is not a cursor"),
        ({"limit": 0}, "limit must be a whole number from 1 to 1000"),
        ({"limit": 1001}, "limit must be a whole number from 1 to 1000"),
        ({"profileId": "not an id"}, "profileId must be"),
    ],
)
async def test_bad_arguments_are_invalid_input_naming_the_argument(
    api: Api, variables: dict[str, Any], needle: str
) -> None:
    error = await api.error(CHANGES_QUERY, variables)
    assert error["extensions"]["code"] == "INVALID_INPUT" and needle in error["message"]


async def test_the_feed_needs_the_audit_scope_and_a_token(api: Api) -> None:
    error = await api.error(CHANGES_QUERY, {}, token=api.tokens.write)
    assert error["extensions"]["code"] == "FORBIDDEN" and "identity:audit" in error["message"]
    assert await api.code(HISTORY_QUERY, {"id": "p"}, token=api.tokens.read) == "FORBIDDEN"
    response = await api.post(CHANGES_QUERY, {})
    assert response.status_code == 401


async def get(api: Api, token: str | None, **params: Any) -> httpx.Response:
    return await api.http.get(CHANGES, params=params, headers=bearer(token) if token else {})


async def test_rest_gives_the_same_events_in_snake_case_and_pages_by_cursor(api: Api) -> None:
    target, source = await two_merged(api)
    response = await get(api, api.tokens.all)
    assert response.status_code == 200, response.text
    body = response.json()
    graphql = (await feed(api))["events"]
    assert [(e["cursor"], e["type"], e["profile_ids"]) for e in body["events"]] == [
        (e["cursor"], e["type"], e["profileIds"]) for e in graphql
    ]
    assert set(body["events"][-1]) == {
        "cursor",
        "type",
        "profile_ids",
        "customer_before",
        "customer_after",
        "actor",
        "request_id",
        "reason",
        "at",
    }
    assert body["next_cursor"] == body["events"][-1]["cursor"]
    first = (await get(api, api.tokens.all, limit=1)).json()
    assert len(first["events"]) == 1
    rest = (await get(api, api.tokens.all, after=first["next_cursor"], limit=1000)).json()
    assert [e["cursor"] for e in first["events"] + rest["events"]] == [e["cursor"] for e in body["events"]]
    merges = (await get(api, api.tokens.all, type="merge")).json()
    assert [e["profile_ids"] for e in merges["events"]] == [[source, target]]
    for secret in SECRETS:
        assert secret not in response.text


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"after": "abc"}, "after is not a cursor"),
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "1001"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "ten"}, "limit must be a whole number from 1 to 1000"),
        ({"type": "MERGED"}, "type: 'MERGED' is not a change type"),
        ({"cursor": "5"}, "unknown query parameter 'cursor'"),
    ],
)
async def test_rest_refuses_bad_parameters_with_400(api: Api, params: dict[str, str], needle: str) -> None:
    message = assert_error(await get(api, api.tokens.all, **params), 400, "INVALID_INPUT")
    assert needle in message


async def test_rest_needs_a_token_and_the_audit_scope(api: Api) -> None:
    assert_error(await get(api, None), 401, "UNAUTHENTICATED")
    message = assert_error(await get(api, api.tokens.erase), 403, "FORBIDDEN")
    assert "identity:audit" in message
