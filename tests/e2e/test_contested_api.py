"""Contested identities over HTTP (issue 19): GraphQL shows why a household landline names no one person, resolve
asks for the account id, explain says the chain was cut, /metrics counts them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.graphql_harness import Api

pytestmark = pytest.mark.neo4j

LANDLINE = "+14155550100"
IDENTITY = "key value contested contestedKey contestedValues saturated"
UPSERT = """
mutation Upsert($input: ProfileInput!) { upsertProfile(input: $input) { profile { id } customer { id } } }"""
RESOLVE = f"""
query Resolve($identities: [IdentityInput!]!) {{
  resolve(identities: $identities) {{
    status assurance
    matchedOn {{ {IDENTITY} }}
    ignored {{ key value reason }}
    customer {{ id profiles {{ id }} identities {{ {IDENTITY} }} }}
    candidates {{ id identities {{ {IDENTITY} }} }}
  }}
}}"""
EXPLAIN = f"""
query Explain($a: ID!, $b: ID!) {{
  explain(profileA: $a, profileB: $b) {{ connected steps {{ via }} cutBy {{ {IDENTITY} }} }}
}}"""


def member(name: str, account: str) -> dict[str, Any]:
    return {
        "source": "crm",
        "sourceId": name,
        "identities": [{"key": "phone_number", "value": "(415) 555-0100"}, {"key": "account_id", "value": account}],
    }


async def household(api: Api) -> tuple[str, str]:
    ids = []
    for name, account in (("ann", "ACCT-1"), ("bob", "ACCT-2")):
        ids.append(str((await api.data(UPSERT, {"input": member(name, account)}))["upsertProfile"]["profile"]["id"]))
    return ids[0], ids[1]


async def contested_gauge(api: Api) -> float:
    response = await api.http.get("/metrics")
    assert response.status_code == 200, response.text
    lines = [line for line in response.text.splitlines() if line.startswith("idgraph_contested_identities ")]
    return float(lines[0].split()[1])


async def test_a_contested_landline_resolves_ambiguous_and_says_why(api: Api) -> None:
    ann, bob = await household(api)
    result = (await api.data(RESOLVE, {"identities": [{"key": "phone_number", "value": LANDLINE}]}))["resolve"]
    assert (result["status"], result["assurance"], result["customer"]) == ("AMBIGUOUS", "NONE", None)
    assert sorted(c["id"] for c in result["candidates"]) == sorted([ann, bob])
    assert result["ignored"] == [{"key": "phone_number", "value": LANDLINE, "reason": "CONTESTED"}]
    assert [m["value"] for m in result["matchedOn"]] == [LANDLINE]
    for candidate in result["candidates"]:  # each sees why the landline joined no one
        landline = next(i for i in candidate["identities"] if i["value"] == LANDLINE)
        assert (landline["contested"], landline["contestedKey"], landline["contestedValues"]) == (True, "account_id", 2)
        assert landline["saturated"] is False


async def test_the_landline_with_the_account_id_finds_the_account_holder(api: Api) -> None:
    _, bob = await household(api)
    keys = [{"key": "phone_number", "value": LANDLINE}, {"key": "account_id", "value": "ACCT-2"}]
    result = (await api.data(RESOLVE, {"identities": keys}))["resolve"]
    assert (result["status"], result["assurance"]) == ("FOUND", "STRONG")
    assert [p["id"] for p in result["customer"]["profiles"]] == [bob]
    assert [(m["key"], m["contested"]) for m in result["matchedOn"]] == [("account_id", False)]
    landline = next(i for i in result["customer"]["identities"] if i["value"] == LANDLINE)
    assert (landline["contested"], landline["contestedKey"], landline["contestedValues"]) == (True, "account_id", 2)


async def test_explain_names_the_contested_value_that_cut_the_chain(api: Api) -> None:
    ann, bob = await household(api)
    explanation = (await api.data(EXPLAIN, {"a": ann, "b": bob}))["explain"]
    assert (explanation["connected"], explanation["steps"]) == (False, [])
    assert [(i["value"], i["contestedKey"], i["contestedValues"]) for i in explanation["cutBy"]] == [
        (LANDLINE, "account_id", 2)
    ]


async def test_metrics_count_contested_identities(api: Api) -> None:
    assert await contested_gauge(api) == 0
    await household(api)
    assert await contested_gauge(api) == 1
