"""Every GraphQL operation over HTTP, with its error paths, against the real Neo4j with the app's lifespan running.

Requests go through the whole HTTP stack (the guard's bearer tokens and request ids, strawberry's view, the
resolvers, the use cases, the repository) into the session's database, which is emptied before each test.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.db.driver import AsyncDriver
from app.graphql.schema import MAX_BATCH
from app.services.identity import IdentityService
from tests.e2e.graphql_harness import Api

pytestmark = pytest.mark.neo4j

CUSTOMER = """
    id skills attributes truncated
    profiles { id source sourceId attributes identities { key value } }
    identities { key value blocked saturated profileCount }
    conflicts { key values limit }
    merges { sourceProfileId targetProfileId by reason }
"""
UPSERT = f"""
mutation Upsert($input: ProfileInput!) {{
  upsertProfile(input: $input) {{
    created consistencyToken
    rejected {{ key reason detail }}
    profile {{ id source sourceId attributes identities {{ key value }} }}
    customer {{ {CUSTOMER} }}
  }}
}}"""
UPSERT_MANY = """
mutation UpsertMany($inputs: [ProfileInput!]!) {
  upsertProfiles(inputs: $inputs) { created rejected { key reason } profile { id sourceId } customer { id } }
}"""
RESOLVE = f"""
query Resolve($identities: [IdentityInput!]!, $token: String) {{
  resolve(identities: $identities, consistencyToken: $token) {{
    status assurance
    matchedOn {{ key value }}
    rejected {{ key reason }}
    customer {{ {CUSTOMER} }}
    candidates {{ id }}
  }}
}}"""
CUSTOMER_QUERY = f"""
query Customer($id: ID!, $token: String) {{ customer(profileId: $id, consistencyToken: $token) {{ {CUSTOMER} }} }}"""
PROFILE_QUERY = """
query Profile($id: ID!) {
  profile(id: $id) { id source sourceId attributes identities { key value } links { key value raw source linking } }
}"""
EXPLAIN = """
query Explain($a: ID!, $b: ID!) {
  explain(profileA: $a, profileB: $b) {
    connected profileIds
    steps { fromProfileId toProfileId via identity { key value } merge { reason } }
  }
}"""
NORMALIZE = """
query Normalize($key: String!, $value: String!) {
  normalize(key: $key, value: $value) { key raw value rule blocked rejection { key reason } }
}"""
STRATEGY = """
{
  strategy {
    name defaultRegion fallbackSkill maxProfilesPerIdentity blockedValueCount
    attributes { name kind normalization maxPerCustomer }
    routingRules { skill attribute equals withinDays }
  }
}"""
LINK = f"""
mutation Link($id: ID!, $identities: [IdentityInput!]!) {{
  linkIdentities(profileId: $id, identities: $identities) {{
    created consistencyToken rejected {{ key reason }} profile {{ id identities {{ key value }} }}
    customer {{ {CUSTOMER} }}
  }}
}}"""
MERGE = f"""
mutation Merge($source: ID!, $target: ID!, $reason: String, $force: Boolean! = false) {{
  mergeProfiles(sourceProfileId: $source, targetProfileId: $target, reason: $reason, force: $force) {{ {CUSTOMER} }}
}}"""
UNMERGE = """
mutation Unmerge($source: ID!, $target: ID!) {
  unmergeProfiles(sourceProfileId: $source, targetProfileId: $target) { id profiles { id } }
}"""
UNLINK = f"""
mutation Unlink($id: ID!, $identity: IdentityInput!) {{
  unlinkIdentity(profileId: $id, identity: $identity) {{ {CUSTOMER} }}
}}"""
RECEIPT_FIELDS = "requestId status profilesDeleted identitiesDeleted requestedBy reason at suppressed"
ERASE_CUSTOMER = f"""
mutation Erase($id: ID!, $request: ID!, $reason: String!) {{
  eraseCustomer(profileId: $id, requestId: $request, reason: $reason) {{ {RECEIPT_FIELDS} }}
}}"""
ERASE_PROFILE = f"""
mutation EraseProfile($id: ID!, $request: ID!, $reason: String!) {{
  eraseProfile(profileId: $id, requestId: $request, reason: $reason) {{ {RECEIPT_FIELDS} }}
}}"""
ERASURE_PREVIEW = """
query Preview($id: ID!, $whole: Boolean! = true) {
  erasurePreview(profileId: $id, wholeCustomer: $whole) { profileIds identities { key value } keptIdentities { key } }
}"""
ERASURE_RECEIPT = f"query Receipt($request: ID!) {{ erasureReceipt(requestId: $request) {{ {RECEIPT_FIELDS} }} }}"

PHONE_RAW, PHONE = "1-415-555-2671", "+14155552671"
EMAIL_RAW, EMAIL = "  John.Doe@Example.COM ", "john.doe@example.com"
OTHER_PHONE = "+442071838750"


def phone(value: str = PHONE_RAW) -> dict[str, str]:
    return {"key": "phone_number", "value": value}


def email(value: str = EMAIL_RAW) -> dict[str, str]:
    return {"key": "email_address", "value": value}


def account(value: str) -> dict[str, str]:
    return {"key": "account_id", "value": value}


def profile_input(
    source: str, source_id: str | None, *identities: dict[str, str], attributes: Any = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"source": source, "identities": list(identities)}
    if source_id is not None:
        item["sourceId"] = source_id
    if attributes is not None:
        item["attributes"] = attributes
    return item


async def upsert(api: Api, item: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await api.data(UPSERT, {"input": item}))["upsertProfile"]
    return result


async def profile_id(api: Api, item: dict[str, Any]) -> str:
    return str((await upsert(api, item))["profile"]["id"])


async def count(driver: AsyncDriver, label: str) -> int:
    records, _, _ = await driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS n")
    return int(records[0]["n"])


def keys_of(customer: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["key"], i["value"]) for i in customer["identities"]}


# -- authentication and scopes ------------------------------------------------------------------------------------


async def test_a_request_without_a_token_is_401_with_www_authenticate(api: Api, driver: AsyncDriver) -> None:
    response = await api.post(UPSERT, {"input": profile_input("crm", "C-1", phone())})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await count(driver, "Profile") == 0


async def test_a_bad_token_is_401_invalid_token(api: Api, driver: AsyncDriver) -> None:
    for header in ("Bearer idg_not-a-token", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await api.http.post(
            "/graphql",
            json={"query": UPSERT, "variables": {"input": profile_input("crm", "C-1", phone())}},
            headers={"authorization": header},
        )

        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (
        'error="invalid_token"' in (await api.post("{ strategy { name } }", token="wrong")).headers["www-authenticate"]
    )
    assert await count(driver, "Profile") == 0


async def test_a_read_only_token_may_query_but_not_write(api: Api, driver: AsyncDriver) -> None:
    assert (await api.data(STRATEGY, token=api.tokens.read))["strategy"]["name"]

    writes: list[tuple[str, dict[str, Any]]] = [
        (UPSERT, {"input": profile_input("crm", "C-1", phone())}),
        (UPSERT_MANY, {"inputs": [profile_input("crm", "C-1", phone())]}),
        (LINK, {"id": "p-1", "identities": [email()]}),
        (MERGE, {"source": "p-1", "target": "p-2"}),
        (UNMERGE, {"source": "p-1", "target": "p-2"}),
        (UNLINK, {"id": "p-1", "identity": phone()}),
    ]
    for query, variables in writes:
        assert await api.code(query, variables, token=api.tokens.read) == "FORBIDDEN", query
    assert await count(driver, "Profile") == 0


async def test_a_write_token_may_not_erase_nor_look_at_erasures(api: Api, driver: AsyncDriver) -> None:
    pid = await profile_id(api, profile_input("crm", "C-1", phone()))

    erase = {"id": pid, "request": "req-1", "reason": "gdpr"}
    assert await api.code(ERASE_CUSTOMER, erase, token=api.tokens.write) == "FORBIDDEN"
    assert await api.code(ERASE_PROFILE, erase, token=api.tokens.write) == "FORBIDDEN"
    assert await api.code(ERASURE_PREVIEW, {"id": pid}, token=api.tokens.write) == "FORBIDDEN"
    assert await api.code(ERASURE_RECEIPT, {"request": "req-1"}, token=api.tokens.read) == "FORBIDDEN"
    error = await api.error(ERASE_CUSTOMER, erase, token=api.tokens.write)
    assert "identity:erase" in error["message"]
    assert await count(driver, "Profile") == 1
    # An erase token without the write scope erases, but cannot write.
    assert await api.code(UPSERT, {"input": profile_input("crm", "C-2", email())}, token=api.tokens.erase) == (
        "FORBIDDEN"
    )
    receipt = (await api.data(ERASE_CUSTOMER, erase, token=api.tokens.erase))["eraseCustomer"]
    assert receipt["profilesDeleted"] == 1
    assert receipt["requestedBy"] == "eraser"


# -- upserts ------------------------------------------------------------------------------------------------------


async def test_upsert_profile_normalizes_identities_and_is_idempotent_on_source_and_source_id(api: Api) -> None:
    item = profile_input("salesforce", "SF-1", phone(), email(), attributes={"tier": "Platinum", "visits": 3})

    first = await upsert(api, item)
    again = await upsert(api, item)

    assert first["created"] is True
    assert again["created"] is False
    assert again["profile"]["id"] == first["profile"]["id"]
    assert first["rejected"] == []
    assert first["consistencyToken"]
    profile = first["profile"]
    assert profile["source"] == "salesforce"
    assert profile["sourceId"] == "SF-1"
    assert profile["attributes"] == {"tier": "Platinum", "visits": 3}
    assert {(i["key"], i["value"]) for i in profile["identities"]} == {
        ("phone_number", PHONE),
        ("email_address", EMAIL),
    }
    customer = first["customer"]
    assert customer["id"] == profile["id"]
    assert "Premium_Support" in customer["skills"]


async def test_upsert_lists_a_bad_phone_in_rejected_and_stores_the_rest(api: Api, driver: AsyncDriver) -> None:
    result = await upsert(api, profile_input("ivr", "call-1", phone("12"), email()))

    assert result["created"] is True
    assert [(r["key"], r["reason"]) for r in result["rejected"]] == [("phone_number", "INVALID_PHONE")]
    assert "12" not in result["rejected"][0]["detail"]
    assert keys_of(result["customer"]) == {("email_address", EMAIL)}
    assert await count(driver, "Identity") == 1


async def test_upsert_with_nothing_usable_is_invalid_input_and_writes_nothing(api: Api, driver: AsyncDriver) -> None:
    assert await api.code(UPSERT, {"input": profile_input("ivr", "call-1", phone("12"))}) == "INVALID_INPUT"
    assert await api.code(UPSERT, {"input": profile_input("ivr", "call-1", {"key": "shoe_size", "value": "9"})}) == (
        "INVALID_INPUT"
    )
    assert await api.code(UPSERT, {"input": profile_input("not a source!", "x", phone())}) == "INVALID_INPUT"
    assert await count(driver, "Profile") == 0


@pytest.mark.parametrize(
    "attributes",
    [
        {"address": {"city": "Paris"}},
        {"tags": ["a", "b"]},
        ["tier", "Gold"],
        "Gold",
        42,
        {"bad name!": 1},
    ],
)
async def test_attributes_that_are_not_a_flat_object_of_scalars_are_invalid_input(
    api: Api, driver: AsyncDriver, attributes: Any
) -> None:
    error = await api.error(UPSERT, {"input": profile_input("crm", "C-1", phone(), attributes=attributes)})

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert await count(driver, "Profile") == 0


async def test_a_variable_of_the_wrong_shape_is_invalid_input(api: Api, driver: AsyncDriver) -> None:
    wrong_type = {"input": {"source": "crm", "identities": [{"key": "phone_number", "value": 4155552671}]}}
    missing_field = {"input": {"source": "crm", "identities": [{"key": "phone_number"}]}}

    assert await api.code(UPSERT, wrong_type) == "INVALID_INPUT"
    assert await api.code(UPSERT, missing_field) == "INVALID_INPUT"
    assert await api.code(UPSERT, {}) == "INVALID_INPUT"
    assert await count(driver, "Profile") == 0


async def test_upsert_profiles_stores_a_batch_and_refuses_one_over_the_limit(api: Api, driver: AsyncDriver) -> None:
    results = (
        await api.data(
            UPSERT_MANY,
            {"inputs": [profile_input("crm", "C-1", phone()), profile_input("web", "W-1", phone(), email())]},
        )
    )["upsertProfiles"]

    assert [r["created"] for r in results] == [True, True]
    assert results[0]["customer"]["id"] == results[1]["customer"]["id"]  # the shared phone joins them

    too_many = [profile_input("bulk", f"B-{n}", account(f"ACCT-{n}")) for n in range(MAX_BATCH + 1)]
    error = await api.error(UPSERT_MANY, {"inputs": too_many})
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert str(MAX_BATCH) in error["message"]
    assert await count(driver, "Profile") == 2


async def test_upsert_profiles_refuses_the_whole_batch_when_one_input_is_unusable(
    api: Api, driver: AsyncDriver
) -> None:
    error = await api.error(
        UPSERT_MANY, {"inputs": [profile_input("crm", "C-1", phone()), profile_input("crm", "C-2", phone("12"))]}
    )

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert "inputs[1]" in error["message"]
    assert await count(driver, "Profile") == 0


# -- queries ------------------------------------------------------------------------------------------------------


async def test_resolve_finds_the_customer_by_any_spelling_and_says_what_matched(api: Api) -> None:
    pid = await profile_id(api, profile_input("crm", "C-1", phone(), email(), attributes={"tier": "Gold"}))

    resolution = (await api.data(RESOLVE, {"identities": [phone("+1 (415) 555-2671")]}, token=api.tokens.read))[
        "resolve"
    ]

    assert resolution["status"] == "FOUND"
    assert resolution["customer"]["id"] == pid
    assert resolution["matchedOn"] == [{"key": "phone_number", "value": PHONE}]
    assert resolution["candidates"] == []
    assert resolution["customer"]["skills"] == ["General_Support"]
    assert resolution["customer"]["attributes"] == {"tier": "Gold"}


async def test_resolve_of_an_unknown_caller_is_not_found_and_leaves_no_trace(api: Api, driver: AsyncDriver) -> None:
    resolution = (await api.data(RESOLVE, {"identities": [phone(), email()]}))["resolve"]

    assert resolution == {
        "status": "NOT_FOUND",
        "assurance": "NONE",
        "matchedOn": [],
        "rejected": [],
        "customer": None,
        "candidates": [],
    }
    assert await count(driver, "Profile") == 0
    assert await count(driver, "Identity") == 0


async def test_resolve_keys_of_two_customers_is_ambiguous_with_both_candidates(api: Api) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone()))
    b = await profile_id(api, profile_input("web", "W-1", email()))

    resolution = (await api.data(RESOLVE, {"identities": [phone(), email()]}))["resolve"]

    assert resolution["status"] == "AMBIGUOUS"
    assert resolution["customer"] is None
    assert {c["id"] for c in resolution["candidates"]} == {a, b}


async def test_resolve_with_only_a_bad_phone_is_invalid_input(api: Api) -> None:
    error = await api.error(RESOLVE, {"identities": [phone("555")]})

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["path"] == ["resolve"]


async def test_resolve_lists_a_bad_key_beside_the_match_and_refuses_too_many_keys(api: Api) -> None:
    await profile_id(api, profile_input("crm", "C-1", email()))

    resolution = (await api.data(RESOLVE, {"identities": [phone("555"), email()]}))["resolve"]
    assert resolution["status"] == "FOUND"
    assert resolution["rejected"] == [{"key": "phone_number", "reason": "INVALID_PHONE"}]

    assert await api.code(RESOLVE, {"identities": [email(f"u{n}@example.com") for n in range(11)]}) == ("INVALID_INPUT")
    assert await api.code(RESOLVE, {"identities": []}) == "INVALID_INPUT"


async def test_customer_and_profile_queries_return_the_records_or_null(api: Api) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone(), attributes={"tier": "Gold"}))
    b = await profile_id(api, profile_input("ivr", "call-9", phone("+14155552671"), email()))

    customer = (await api.data(CUSTOMER_QUERY, {"id": b}, token=api.tokens.read))["customer"]
    profile = (await api.data(PROFILE_QUERY, {"id": a}, token=api.tokens.read))["profile"]

    assert customer["id"] == a  # the oldest profile names the customer
    assert {p["id"] for p in customer["profiles"]} == {a, b}
    assert keys_of(customer) == {("phone_number", PHONE), ("email_address", EMAIL)}
    assert profile["id"] == a
    assert profile["sourceId"] == "C-1"
    assert profile["attributes"] == {"tier": "Gold"}
    assert profile["identities"] == [{"key": "phone_number", "value": PHONE}]
    assert profile["links"] == [
        {"key": "phone_number", "value": PHONE, "raw": PHONE_RAW, "source": "crm", "linking": True}
    ]
    assert (await api.data(CUSTOMER_QUERY, {"id": "no-such-profile"}))["customer"] is None
    assert (await api.data(PROFILE_QUERY, {"id": "no-such-profile"}))["profile"] is None
    assert await api.code(PROFILE_QUERY, {"id": "not an id!"}) == "INVALID_INPUT"


async def test_explain_names_the_shared_identity_joining_two_profiles(api: Api) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone()))
    b = await profile_id(api, profile_input("ivr", "call-1", phone()))
    c = await profile_id(api, profile_input("web", "W-1", email()))

    joined = (await api.data(EXPLAIN, {"a": a, "b": b}, token=api.tokens.read))["explain"]
    apart = (await api.data(EXPLAIN, {"a": a, "b": c}))["explain"]

    assert joined["connected"] is True
    assert joined["steps"] == [
        {
            "fromProfileId": a,
            "toProfileId": b,
            "via": "IDENTITY",
            "identity": {"key": "phone_number", "value": PHONE},
            "merge": None,
        }
    ]
    assert apart["connected"] is False
    assert apart["steps"] == []
    assert await api.code(EXPLAIN, {"a": a, "b": "no-such-profile"}) == "NOT_FOUND"


async def test_normalize_dry_runs_a_value_and_stores_nothing(api: Api, driver: AsyncDriver) -> None:
    good = await api.data(NORMALIZE, {"key": "phone_number", "value": PHONE_RAW}, token=api.tokens.read)
    bad = await api.data(NORMALIZE, {"key": "phone_number", "value": "12"})
    blocked = await api.data(NORMALIZE, {"key": "email_address", "value": "TEST@example.com"})

    assert good["normalize"] == {
        "key": "phone_number",
        "raw": PHONE_RAW,
        "value": PHONE,
        "rule": "E164",
        "blocked": False,
        "rejection": None,
    }
    assert bad["normalize"]["value"] is None
    assert bad["normalize"]["rejection"] == {"key": "phone_number", "reason": "INVALID_PHONE"}
    assert blocked["normalize"]["blocked"] is True
    assert await count(driver, "Identity") == 0


async def test_strategy_shows_the_active_strategy_without_its_blocked_values(api: Api) -> None:
    strategy = (await api.data(STRATEGY, token=api.tokens.read))["strategy"]

    assert strategy["name"] == "Deterministic_Phone_Email_Account"
    assert strategy["defaultRegion"] == "US"
    assert strategy["fallbackSkill"] == "General_Support"
    assert strategy["blockedValueCount"] == 2
    assert [a["name"] for a in strategy["attributes"]] == ["phone_number", "email_address", "account_id"]
    assert {"skill": "Premium_Support", "attribute": "tier", "equals": "Platinum", "withinDays": None} in strategy[
        "routingRules"
    ]


# -- links, merges, unmerges, unlinks -----------------------------------------------------------------------------


async def test_link_identities_adds_values_to_an_existing_profile(api: Api) -> None:
    pid = await profile_id(api, profile_input("crm", "C-1", phone()))

    linked = (await api.data(LINK, {"id": pid, "identities": [email(), phone("12")]}, token=api.tokens.write))[
        "linkIdentities"
    ]
    found = (await api.data(RESOLVE, {"identities": [email("john.doe@example.com")]}))["resolve"]

    assert linked["created"] is False
    assert linked["profile"]["id"] == pid
    assert linked["rejected"] == [{"key": "phone_number", "reason": "INVALID_PHONE"}]
    assert keys_of(linked["customer"]) == {("phone_number", PHONE), ("email_address", EMAIL)}
    assert found["customer"]["id"] == pid
    assert await api.code(LINK, {"id": "no-such-profile", "identities": [email()]}) == "NOT_FOUND"


async def test_merge_profiles_joins_two_customers_and_unmerge_splits_them_again(api: Api) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone()))
    b = await profile_id(api, profile_input("web", "W-1", email()))

    merged = (await api.data(MERGE, {"source": b, "target": a, "reason": "same person"}, token=api.tokens.write))[
        "mergeProfiles"
    ]
    assert {p["id"] for p in merged["profiles"]} == {a, b}
    assert merged["merges"] == [{"sourceProfileId": b, "targetProfileId": a, "by": "writer", "reason": "same person"}]
    assert (await api.data(RESOLVE, {"identities": [email()]}))["resolve"]["customer"]["id"] == a

    split = (await api.data(UNMERGE, {"source": b, "target": a}, token=api.tokens.write))["unmergeProfiles"]
    assert sorted([p["id"] for p in c["profiles"]] for c in split) == sorted([[a], [b]])
    assert (await api.data(RESOLVE, {"identities": [email()]}))["resolve"]["customer"]["id"] == b
    assert await api.code(UNMERGE, {"source": b, "target": a}) == "NOT_FOUND"


async def test_merge_refuses_self_merge_and_unknown_profiles(api: Api) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone()))

    assert await api.code(MERGE, {"source": a, "target": a}) == "INVALID_INPUT"
    assert await api.code(MERGE, {"source": a, "target": "no-such-profile"}) == "NOT_FOUND"
    assert await api.code(MERGE, {"source": "no-such-profile", "target": a}) == "NOT_FOUND"


async def test_a_merge_giving_one_customer_two_account_ids_is_a_conflict_unless_forced(
    api: Api, driver: AsyncDriver
) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone(), account("ACCT-1")))
    b = await profile_id(api, profile_input("billing", "B-1", email(), account("ACCT-2")))

    error = await api.error(MERGE, {"source": b, "target": a})
    assert error["extensions"]["code"] == "CONFLICT"
    assert "account_id" in error["message"]
    assert "ACCT-" not in error["message"]
    records, _, _ = await driver.execute_query("MATCH ()-[m:MERGED_INTO]->() RETURN count(m) AS n")
    assert records[0]["n"] == 0

    forced = (await api.data(MERGE, {"source": b, "target": a, "force": True}))["mergeProfiles"]
    assert {p["id"] for p in forced["profiles"]} == {a, b}
    assert forced["conflicts"] == [{"key": "account_id", "values": ["ACCT-1", "ACCT-2"], "limit": 1}]


async def test_unlink_identity_detaches_one_value_and_splits_the_customer(api: Api) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone(), email()))
    b = await profile_id(api, profile_input("ivr", "call-1", phone()))

    after = (await api.data(UNLINK, {"id": b, "identity": phone("(415) 555-2671")}, token=api.tokens.write))[
        "unlinkIdentity"
    ]

    assert after is not None
    assert [p["id"] for p in after["profiles"]] == [b]
    assert after["identities"] == []
    a_customer = (await api.data(CUSTOMER_QUERY, {"id": a}))["customer"]
    assert [p["id"] for p in a_customer["profiles"]] == [a]
    assert await api.code(UNLINK, {"id": "no-such-profile", "identity": phone()}) == "NOT_FOUND"
    assert await api.code(UNLINK, {"id": b, "identity": phone()}) == "NOT_FOUND"  # no longer holds it
    assert await api.code(UNLINK, {"id": a, "identity": phone("12")}) == "INVALID_INPUT"


# -- erasure ------------------------------------------------------------------------------------------------------


async def test_erasure_preview_lists_what_would_go_and_deletes_nothing(api: Api, driver: AsyncDriver) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone(), email()))
    b = await profile_id(api, profile_input("ivr", "call-1", phone()))

    whole = (await api.data(ERASURE_PREVIEW, {"id": b}, token=api.tokens.erase))["erasurePreview"]
    one = (await api.data(ERASURE_PREVIEW, {"id": b, "whole": False}, token=api.tokens.erase))["erasurePreview"]

    assert sorted(whole["profileIds"]) == sorted([a, b])
    assert {(i["key"], i["value"]) for i in whole["identities"]} == {("phone_number", PHONE), ("email_address", EMAIL)}
    assert one["profileIds"] == [b]
    assert one["identities"] == []
    assert one["keptIdentities"] == [{"key": "phone_number"}]  # profile a still holds it
    assert await count(driver, "Profile") == 2
    assert await api.code(ERASURE_PREVIEW, {"id": "no-such-profile"}) == "NOT_FOUND"


async def test_erase_customer_deletes_it_keeps_a_receipt_and_suppresses_its_values(
    api: Api, driver: AsyncDriver
) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone(), email()))
    await profile_id(api, profile_input("ivr", "call-1", phone()))
    other = await profile_id(api, profile_input("web", "W-1", phone(OTHER_PHONE)))
    erase = {"id": a, "request": "dsr-42", "reason": "GDPR art. 17"}

    receipt = (await api.data(ERASE_CUSTOMER, erase, token=api.tokens.erase))["eraseCustomer"]
    again = (await api.data(ERASE_CUSTOMER, erase, token=api.tokens.erase))["eraseCustomer"]
    stored = (await api.data(ERASURE_RECEIPT, {"request": "dsr-42"}, token=api.tokens.erase))["erasureReceipt"]

    assert receipt["requestId"] == "dsr-42"
    assert receipt["profilesDeleted"] == 2
    assert receipt["identitiesDeleted"] == 2
    assert receipt["suppressed"] == 2
    assert receipt["requestedBy"] == "eraser"
    assert again == receipt  # idempotent on requestId
    assert stored == receipt
    assert PHONE not in json.dumps(receipt)
    assert (await api.data(ERASURE_RECEIPT, {"request": "no-such-request"}))["erasureReceipt"] is None
    assert (await api.data(RESOLVE, {"identities": [phone()]}))["resolve"]["status"] == "NOT_FOUND"
    assert (await api.data(CUSTOMER_QUERY, {"id": other}))["customer"] is not None
    assert await count(driver, "Profile") == 1

    # A lagging sync cannot bring the person back: neither the erased record, whatever it carries, nor another
    # record carrying one of the erased values (refused whole by default).
    error = await api.error(UPSERT, {"input": profile_input("crm", "C-1", phone(OTHER_PHONE))})
    assert error["extensions"]["code"] == "SUPPRESSED"
    mixed = await api.error(UPSERT, {"input": profile_input("crm", "C-2", email(), phone(OTHER_PHONE))})
    assert mixed["extensions"]["code"] == "SUPPRESSED"
    assert await count(driver, "Profile") == 1

    assert await api.code(ERASE_CUSTOMER, {**erase, "request": "dsr-43", "id": "no-such-profile"}) == "NOT_FOUND"
    assert await api.code(ERASE_CUSTOMER, {**erase, "request": "dsr-44", "reason": " "}) == "INVALID_INPUT"


async def test_erase_profile_deletes_only_that_profile(api: Api, driver: AsyncDriver) -> None:
    a = await profile_id(api, profile_input("crm", "C-1", phone(), email()))
    b = await profile_id(api, profile_input("ivr", "call-1", phone()))

    receipt = (
        await api.data(ERASE_PROFILE, {"id": b, "request": "dsr-7", "reason": "duplicate"}, token=api.tokens.erase)
    )["eraseProfile"]

    assert receipt["profilesDeleted"] == 1
    assert receipt["identitiesDeleted"] == 0  # profile a still holds the phone
    remaining = (await api.data(CUSTOMER_QUERY, {"id": a}))["customer"]
    assert [p["id"] for p in remaining["profiles"]] == [a]
    assert keys_of(remaining) == {("phone_number", PHONE), ("email_address", EMAIL)}
    assert await count(driver, "Profile") == 1
    assert await api.code(ERASE_PROFILE, {"id": "no-such-profile", "request": "dsr-8", "reason": "x"}) == ("NOT_FOUND")


# -- read-your-writes ---------------------------------------------------------------------------------------------


def forged_token(values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def test_a_read_with_the_consistency_token_of_a_write_sees_that_write(api: Api) -> None:
    written = await upsert(api, profile_input("crm", "C-1", phone(), email()))
    token = written["consistencyToken"]

    resolution = (await api.data(RESOLVE, {"identities": [email()], "token": token}, token=api.tokens.read))["resolve"]
    customer = (await api.data(CUSTOMER_QUERY, {"id": written["profile"]["id"], "token": token}))["customer"]

    assert resolution["status"] == "FOUND"
    assert resolution["customer"]["id"] == written["profile"]["id"]
    assert customer["id"] == written["profile"]["id"]

    # Every mutation hands out a token; a later write's token also covers the earlier write.
    linked = (await api.data(LINK, {"id": written["profile"]["id"], "identities": [phone(OTHER_PHONE)]}))[
        "linkIdentities"
    ]
    assert linked["consistencyToken"] != token
    after = (await api.data(RESOLVE, {"identities": [phone(OTHER_PHONE)], "token": linked["consistencyToken"]}))[
        "resolve"
    ]
    assert after["customer"]["id"] == written["profile"]["id"]


@pytest.mark.parametrize("token", ["garbage", "%%%", forged_token([]) + "!", base64.b64encode(b"{}").decode()])
async def test_a_consistency_token_the_service_did_not_issue_is_invalid_input(api: Api, token: str) -> None:
    error = await api.error(RESOLVE, {"identities": [phone()], "token": token})

    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert "consistencyToken" in error["message"]


async def test_a_well_formed_but_forged_consistency_token_is_invalid_input(api: Api) -> None:
    assert await api.code(RESOLVE, {"identities": [phone()], "token": forged_token(["FB:forged"])}) == "INVALID_INPUT"


# -- unexpected errors --------------------------------------------------------------------------------------------


async def test_an_unexpected_exception_is_masked_as_internal_with_the_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"driver exploded on {PHONE} for {EMAIL}"

    async def explode(self: IdentityService, *args: object, **kwargs: object) -> None:
        raise RuntimeError(secret)

    monkeypatch.setattr(IdentityService, "resolve", explode)

    response = await api.post(RESOLVE, {"identities": [phone()]}, token=api.tokens.read)

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    assert request_id in error["message"]
    assert secret not in response.text
    assert PHONE not in response.text
    assert "RuntimeError" not in response.text


async def test_a_client_request_id_is_echoed_and_used_in_errors(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def explode(self: IdentityService, *args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(IdentityService, "customer", explode)

    response = await api.post(
        CUSTOMER_QUERY, {"id": "p-1"}, token=api.tokens.read, headers={"x-request-id": "desk-0042-abcdef"}
    )

    assert response.headers["x-request-id"] == "desk-0042-abcdef"
    assert response.json()["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": "desk-0042-abcdef"}
