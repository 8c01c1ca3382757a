"""REST compatibility endpoints over HTTP, with the app's lifespan running against the real Neo4j."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from tests.conftest import free_port
from tests.e2e.rest_harness import BASE, Tokens, app_settings, assert_error, bearer, serving

pytestmark = pytest.mark.neo4j

PHONE = "+1 415 555 2671"
EMAIL = "John.Doe@Example.com"
ACCOUNT = "ACCT-98765"


@dataclass
class Rest:
    http: httpx.AsyncClient
    tokens: Tokens

    async def push(self, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return await self.http.post(BASE, json=body, headers=bearer(token or self.tokens.all))

    async def pushed(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.push(body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="module")
def rest_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Tokens]:
    return app_settings(settings, tmp_path_factory.mktemp("rest"))


@pytest.fixture
async def rest(driver: AsyncDriver, rest_settings: tuple[Settings, Tokens]) -> AsyncIterator[Rest]:
    app_config, tokens = rest_settings
    async with serving(app_config) as http:
        yield Rest(http, tokens)


def crm_contact(source_id: str = "C-1", **extra: Any) -> dict[str, Any]:
    return {
        "source": "salesforce",
        "source_id": source_id,
        "identities": [
            {"key": "phone_number", "value": PHONE, "type": "primary"},
            {"key": "email_address", "value": EMAIL, "type": "primary"},
            {"key": "account_id", "value": ACCOUNT, "type": "secondary"},
        ],
        "attributes": {"tier": "Platinum", "last_order_date": "2023-10-15T14:30:00Z"},
        **extra,
    }


async def test_pushing_identities_creates_a_profile_then_updates_it_idempotently_on_source_id(rest: Rest) -> None:
    first = await rest.push(crm_contact())
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["created"] is True
    assert created["rejected"] == []
    assert created["consistency_token"]
    profile = created["profile"]
    assert (profile["source"], profile["source_id"]) == ("salesforce", "C-1")
    assert {(i["key"], i["value"]) for i in profile["identities"]} == {
        ("phone_number", "+14155552671"),
        ("email_address", "john.doe@example.com"),
        ("account_id", "ACCT-98765"),
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", profile["created_at"]), profile["created_at"]
    customer = created["customer"]
    phone = {"key": "phone_number", "value": "+14155552671", "linking": True, "blocked": False, "saturated": False}
    phone["contested"] = False
    assert {**phone, "profile_count": 1} in profile["identities"]
    assert {**phone, "profile_count": 1} in customer["identities"]
    assert customer["id"] == profile["id"]
    assert customer["attributes"]["tier"] == "Platinum"
    assert "Premium_Support" in customer["skills"]

    again = await rest.push(crm_contact(attributes={"tier": "Gold"}))
    assert again.status_code == 200, again.text
    updated = again.json()
    assert updated["created"] is False
    assert updated["profile"]["id"] == profile["id"]
    assert updated["customer"]["attributes"]["tier"] == "Gold"
    assert len(updated["customer"]["profiles"]) == 1


async def test_a_push_without_source_is_stored_under_source_api(rest: Rest) -> None:
    result = await rest.pushed({"identities": [{"key": "email_address", "value": EMAIL}], "attributes": {}})
    assert result["profile"]["source"] == "api"
    assert result["profile"]["source_id"] is None


async def test_a_bad_phone_is_listed_in_rejected_and_the_rest_is_stored(rest: Rest) -> None:
    response = await rest.push(
        {
            "identities": [
                {"key": "phone_number", "value": "12", "type": "primary"},
                {"key": "email_address", "value": EMAIL, "type": "primary"},
            ],
            "attributes": {},
        }
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert [(r["key"], r["reason"]) for r in result["rejected"]] == [("phone_number", "INVALID_PHONE")]
    assert [i["key"] for i in result["profile"]["identities"]] == ["email_address"]


async def test_a_push_with_nothing_usable_is_invalid_input(rest: Rest) -> None:
    response = await rest.push({"identities": [{"key": "phone_number", "value": "12"}]})
    assert_error(response, 400, "INVALID_INPUT")


async def test_merge_joins_two_profiles_into_one_customer(rest: Rest) -> None:
    a = await rest.pushed({"source": "ivr", "identities": [{"key": "phone_number", "value": "1-800-555-0199"}]})
    b = await rest.pushed({"source": "crm", "identities": [{"key": "email_address", "value": EMAIL}]})
    response = await rest.http.post(
        f"{BASE}/merge",
        json={
            "source_profile_id": a["profile"]["id"],
            "target_profile_id": b["profile"]["id"],
            "reason": "duplicate clean-up",
        },
        headers=bearer(rest.tokens.write),
    )
    assert response.status_code == 200, response.text
    customer = response.json()
    assert {p["id"] for p in customer["profiles"]} == {a["profile"]["id"], b["profile"]["id"]}
    [merge] = customer["merges"]
    assert (merge["source_profile_id"], merge["target_profile_id"]) == (a["profile"]["id"], b["profile"]["id"])
    assert (merge["by"], merge["reason"]) == ("writer", "duplicate clean-up")


async def test_merging_a_profile_into_itself_is_invalid_input(rest: Rest) -> None:
    a = await rest.pushed({"identities": [{"key": "email_address", "value": EMAIL}]})
    pid = a["profile"]["id"]
    response = await rest.http.post(
        f"{BASE}/merge", json={"source_profile_id": pid, "target_profile_id": pid}, headers=bearer(rest.tokens.all)
    )
    assert "itself" in assert_error(response, 400, "INVALID_INPUT")


async def test_merging_an_unknown_profile_is_not_found(rest: Rest) -> None:
    a = await rest.pushed({"identities": [{"key": "email_address", "value": EMAIL}]})
    response = await rest.http.post(
        f"{BASE}/merge",
        json={"source_profile_id": "no-such-profile", "target_profile_id": a["profile"]["id"]},
        headers=bearer(rest.tokens.all),
    )
    assert_error(response, 404, "NOT_FOUND")


async def test_delete_erases_the_customer_idempotently_and_a_later_push_of_its_email_is_suppressed(rest: Rest) -> None:
    a = await rest.pushed(crm_contact())
    b = await rest.pushed({"source": "webchat", "identities": [{"key": "email_address", "value": EMAIL}]})
    assert b["customer"]["id"] == a["profile"]["id"]  # one customer through the shared email
    target = b["profile"]["id"]

    url = f"{BASE}/{target}"
    headers = {**bearer(rest.tokens.erase), "idempotency-key": "gdpr-req-0001"}
    first = await rest.http.delete(url, params={"reason": "customer opted out"}, headers=headers)
    assert first.status_code == 200, first.text
    receipt = first.json()
    assert receipt["request_id"] == "gdpr-req-0001"
    assert receipt["status"] == "COMPLETED"
    assert (receipt["profiles_deleted"], receipt["identities_deleted"]) == (2, 3)
    assert (receipt["requested_by"], receipt["reason"]) == ("eraser", "customer opted out")
    assert EMAIL.lower() not in first.text

    again = await rest.http.delete(url, params={"reason": "customer opted out"}, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == receipt

    gone = await rest.http.get(f"{BASE}/{a['profile']['id']}", headers=bearer(rest.tokens.read))
    assert_error(gone, 404, "NOT_FOUND")

    resurrected = await rest.push({"source": "crm", "identities": [{"key": "email_address", "value": EMAIL}]})
    assert_error(resurrected, 422, "SUPPRESSED")


async def test_delete_without_idempotency_key_generates_a_request_id_and_a_default_reason(rest: Rest) -> None:
    a = await rest.pushed({"identities": [{"key": "email_address", "value": EMAIL}]})
    response = await rest.http.delete(f"{BASE}/{a['profile']['id']}", headers=bearer(rest.tokens.erase))
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["request_id"].startswith("rest-")
    assert receipt["reason"] == "REST delete request"


async def test_delete_of_an_unknown_profile_is_not_found(rest: Rest) -> None:
    response = await rest.http.delete(f"{BASE}/no-such-profile", headers=bearer(rest.tokens.erase))
    assert_error(response, 404, "NOT_FOUND")


async def test_an_idempotency_key_in_the_webhook_namespace_is_refused(rest: Rest) -> None:
    a = await rest.pushed({"identities": [{"key": "email_address", "value": EMAIL}]})
    response = await rest.http.delete(
        f"{BASE}/{a['profile']['id']}", headers={**bearer(rest.tokens.erase), "idempotency-key": "webhook:evt-1"}
    )
    assert "Idempotency-Key" in assert_error(response, 400, "INVALID_INPUT")


async def test_resolve_answers_found_or_not_found_and_never_writes(rest: Rest) -> None:
    a = await rest.pushed(crm_contact())
    found = await rest.http.post(
        f"{BASE}/resolve",
        json={
            "identities": [{"key": "phone_number", "value": "(415) 555-2671"}],
            "consistency_token": a["consistency_token"],
        },
        headers=bearer(rest.tokens.read),
    )
    assert found.status_code == 200, found.text
    assert found.json()["status"] == "FOUND"
    assert found.json()["customer"]["id"] == a["profile"]["id"]

    unknown = {"identities": [{"key": "email_address", "value": "nobody@example.org"}]}
    missing = await rest.http.post(f"{BASE}/resolve", json=unknown, headers=bearer(rest.tokens.read))
    assert missing.status_code == 200, missing.text
    assert (missing.json()["status"], missing.json()["customer"]) == ("NOT_FOUND", None)
    again = await rest.http.post(f"{BASE}/resolve", json=unknown, headers=bearer(rest.tokens.read))
    assert again.json()["status"] == "NOT_FOUND"


async def test_get_answers_the_customer_of_a_profile(rest: Rest) -> None:
    a = await rest.pushed(crm_contact())
    response = await rest.http.get(f"{BASE}/{a['profile']['id']}", headers=bearer(rest.tokens.read))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == a["profile"]["id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", BASE), ("POST", f"{BASE}/merge"), ("DELETE", f"{BASE}/p-1"), ("POST", f"{BASE}/resolve")],
)
async def test_requests_without_a_valid_token_are_unauthenticated(rest: Rest, method: str, path: str) -> None:
    for headers in ({}, bearer("idg_not-a-real-token")):
        response = await rest.http.request(method, path, json={}, headers=headers)
        assert_error(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_without_the_scope_is_forbidden(rest: Rest) -> None:
    a = await rest.pushed({"identities": [{"key": "email_address", "value": EMAIL}]})
    pid = a["profile"]["id"]
    read = bearer(rest.tokens.read)
    refused = [
        await rest.push({"identities": [{"key": "email_address", "value": "x@example.org"}]}, rest.tokens.read),
        await rest.http.post(f"{BASE}/merge", json={"source_profile_id": pid, "target_profile_id": pid}, headers=read),
        await rest.http.delete(f"{BASE}/{pid}", headers=read),
        await rest.http.delete(f"{BASE}/{pid}", headers=bearer(rest.tokens.write)),
    ]
    for response in refused:
        assert "scope" in assert_error(response, 403, "FORBIDDEN")
    still = await rest.http.get(f"{BASE}/{pid}", headers=read)
    assert still.status_code == 200  # nothing was erased


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        (BASE, b"{not json", "JSON"),
        (BASE, b"[1, 2]", "JSON object"),
        (BASE, b'{"identities": "phone"}', "identities"),
        (BASE, b'{"identities": [{"key": "email_address"}]}', "identities[0].value"),
        (BASE, b'{"identities": [{"key": 7, "value": "a@b.c"}]}', "identities[0].key"),
        (BASE, b'{"identities": [{"key": "email_address", "value": "a@b.c", "kind": 1}]}', "kind"),
        (BASE, b'{"identities": [], "attributes": [1]}', "attributes"),
        (BASE, b'{"identities": [], "attributes": {"tier": {"nested": 1}}}', "tier"),
        (BASE, b'{"identities": [], "colour": "blue"}', "colour"),
        (BASE, b'{"identities": [], "source_id": true}', "source_id"),
        (f"{BASE}/merge", b'{"source_profile_id": 1, "target_profile_id": "b"}', "source_profile_id"),
        (f"{BASE}/merge", b'{"source_profile_id": "a"}', "target_profile_id"),
        (f"{BASE}/merge", b'{"source_profile_id": "a b", "target_profile_id": "b"}', "source_profile_id"),
        (BASE, b'{"identities": [], "profile_id": "no/slashes"}', "profile_id must be"),
        (BASE, b'{"identities": [], "source_id": " "}', "source_id must be"),
        (BASE, b'{"identities": [], "source_id": "C-1", "profile_id": "p"}', "give source_id or profile_id"),
        (f"{BASE}/merge", b'{"source_profile_id": "a", "target_profile_id": "b", "force": "yes"}', "force"),
        (f"{BASE}/resolve", b'{"identities": null}', "identities"),
    ],
)
async def test_malformed_bodies_are_invalid_input_naming_the_field(
    rest: Rest, path: str, body: bytes, named: str
) -> None:
    headers = {**bearer(rest.tokens.all), "content-type": "application/json"}
    response = await rest.http.post(path, content=body, headers=headers)
    assert named in assert_error(response, 400, "INVALID_INPUT")


async def test_an_unreachable_database_is_database_unavailable(rest_settings: tuple[Settings, Tokens]) -> None:
    app_config, tokens = rest_settings
    async with serving(replace(app_config, neo4j_uri=f"bolt://127.0.0.1:{free_port()}")) as http:
        response = await http.post(
            f"{BASE}/resolve",
            json={"identities": [{"key": "email_address", "value": EMAIL}]},
            headers=bearer(tokens.read),
        )
    assert_error(response, 503, "DATABASE_UNAVAILABLE")
