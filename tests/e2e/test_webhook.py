"""The CRM opt-out webhook over HTTP: signed deliveries erase the customer they name, everything else is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from tests.e2e.rest_harness import BASE, WEBHOOK, Tokens, app_settings, assert_error, bearer, serving, signed

pytestmark = pytest.mark.neo4j

EMAIL = "opt.out@example.com"
PHONE = "+14155550123"
OTHER_PHONE = "+14155550999"


@dataclass
class Client:
    http: httpx.AsyncClient
    tokens: Tokens

    async def push(self, *identities: tuple[str, str]) -> str:
        body = {"source": "crm", "identities": [{"key": k, "value": v} for k, v in identities]}
        response = await self.http.post(BASE, json=body, headers=bearer(self.tokens.all))
        assert response.status_code == 201, response.text
        profile_id: str = response.json()["profile"]["id"]
        return profile_id

    async def exists(self, profile_id: str) -> bool:
        response = await self.http.get(f"{BASE}/{profile_id}", headers=bearer(self.tokens.read))
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200

    async def deliver(self, body: dict[str, Any], **signing: Any) -> httpx.Response:
        raw, headers = signed(body, **signing)
        return await self.http.post(WEBHOOK, content=raw, headers=headers)


@pytest.fixture(scope="module")
def hook_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Tokens]:
    return app_settings(settings, tmp_path_factory.mktemp("webhook"))


@pytest.fixture
async def client(driver: AsyncDriver, hook_settings: tuple[Settings, Tokens]) -> AsyncIterator[Client]:
    app_config, tokens = hook_settings
    async with serving(app_config) as http:
        yield Client(http, tokens)


def event(event_id: str, *identities: tuple[str, str]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "identities": [{"key": k, "value": v} for k, v in identities],
        "reason": "opted out in the CRM",
    }


async def test_a_signed_delivery_erases_the_customer_its_identities_resolve_to(client: Client) -> None:
    first = await client.push(("email_address", EMAIL), ("phone_number", PHONE))
    second = await client.push(("phone_number", PHONE))  # the same customer through the phone
    bystander = await client.push(("phone_number", OTHER_PHONE))

    response = await client.deliver(event("evt-1001", ("email_address", "Opt.Out@Example.com")))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["event_id"]) == ("erased", "evt-1001")
    receipt = body["receipt"]
    assert receipt["request_id"] == "webhook:evt-1001"
    assert (receipt["requested_by"], receipt["reason"]) == ("crm-webhook", "opted out in the CRM")
    assert receipt["profiles_deleted"] == 2
    assert receipt["at"].endswith("Z")
    assert EMAIL not in response.text and PHONE not in response.text

    assert not await client.exists(first)
    assert not await client.exists(second)
    assert await client.exists(bystander)


async def test_a_replayed_event_is_refused_even_freshly_signed_and_after_a_restart(
    client: Client, hook_settings: tuple[Settings, Tokens]
) -> None:
    await client.push(("email_address", EMAIL))
    raw, headers = signed(event("evt-2002", ("email_address", EMAIL)))
    first = await client.http.post(WEBHOOK, content=raw, headers=headers)
    assert first.status_code == 200, first.text

    replay = await client.http.post(WEBHOOK, content=raw, headers=headers)
    assert "already processed" in assert_error(replay, 409, "CONFLICT")

    resigned = await client.deliver(event("evt-2002", ("email_address", EMAIL)), at=time.time() + 1)
    assert_error(resigned, 409, "CONFLICT")

    app_config, _ = hook_settings
    async with serving(app_config) as restarted:  # a new process: only the erasure receipt remembers the event
        again = await restarted.post(WEBHOOK, content=raw, headers=headers)
    assert_error(again, 409, "CONFLICT")


async def test_concurrent_deliveries_of_one_event_erase_once(client: Client) -> None:
    await client.push(("email_address", EMAIL))
    raw, headers = signed(event("evt-2100", ("email_address", EMAIL)))
    responses = await asyncio.gather(*(client.http.post(WEBHOOK, content=raw, headers=headers) for _ in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 409, 409]


async def test_a_bad_signature_is_refused_and_erases_nothing(client: Client) -> None:
    kept = await client.push(("email_address", EMAIL))
    response = await client.deliver(event("evt-3003", ("email_address", EMAIL)), secret="not-the-secret")
    assert_error(response, 401, "UNAUTHENTICATED")
    raw, headers = signed(event("evt-3003", ("email_address", EMAIL)))
    tampered = raw.replace(b"opted out", b"opted in!")
    response = await client.http.post(WEBHOOK, content=tampered, headers=headers)
    assert "signature" in assert_error(response, 401, "UNAUTHENTICATED")
    assert await client.exists(kept)


async def test_an_unsigned_delivery_is_refused(client: Client) -> None:
    kept = await client.push(("email_address", EMAIL))
    response = await client.http.post(WEBHOOK, json=event("evt-4004", ("email_address", EMAIL)))
    assert "unsigned" in assert_error(response, 401, "UNAUTHENTICATED")
    assert await client.exists(kept)


async def test_a_stale_or_future_timestamp_is_refused(client: Client) -> None:
    kept = await client.push(("email_address", EMAIL))
    for at in (time.time() - 600, time.time() + 600):
        response = await client.deliver(event("evt-5005", ("email_address", EMAIL)), at=at)
        assert "seconds away" in assert_error(response, 401, "UNAUTHENTICATED")
    assert await client.exists(kept)


async def test_without_a_secret_the_webhook_is_not_configured(
    driver: AsyncDriver, hook_settings: tuple[Settings, Tokens]
) -> None:
    app_config, _ = hook_settings
    async with serving(replace(app_config, webhook_secret=None)) as http:
        raw, headers = signed(event("evt-6006", ("email_address", EMAIL)))
        response = await http.post(WEBHOOK, content=raw, headers=headers)
    assert "not configured" in assert_error(response, 503, "NOT_CONFIGURED")


async def test_identities_of_several_customers_are_ambiguous_and_nothing_is_erased(client: Client) -> None:
    one = await client.push(("email_address", EMAIL))
    other = await client.push(("phone_number", OTHER_PHONE))
    response = await client.deliver(event("evt-7007", ("email_address", EMAIL), ("phone_number", OTHER_PHONE)))
    assert "nothing was erased" in assert_error(response, 409, "CONFLICT")
    assert await client.exists(one)
    assert await client.exists(other)


async def test_unknown_identities_are_suppressed_with_a_receipt_and_a_replay_is_still_refused(client: Client) -> None:
    raw, headers = signed(event("evt-8008", ("email_address", "Never.Seen@example.org")))
    response = await client.http.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["event_id"]) == ("nothing to erase", "evt-8008")
    receipt = body["receipt"]
    assert (receipt["request_id"], receipt["profiles_deleted"], receipt["suppressed"]) == ("webhook:evt-8008", 0, 1)
    assert "never.seen" not in response.text.lower()
    replay = await client.http.post(WEBHOOK, content=raw, headers=headers)
    assert_error(replay, 409, "CONFLICT")
    # The opt-out holds for the sync that would have created the person later.
    late = await client.http.post(
        BASE,
        json={"source": "crm", "identities": [{"key": "email_address", "value": "never.seen@example.org"}]},
        headers=bearer(client.tokens.all),
    )
    assert_error(late, 422, "SUPPRESSED")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"identities": [{"key": "email_address", "value": EMAIL}], "reason": "x"}, "event_id"),
        ({"event_id": "has space", "identities": [], "reason": "x"}, "event_id"),
        ({"event_id": "e-1", "identities": [{"key": "email_address", "value": EMAIL}]}, "reason"),
        ({"event_id": "e-1", "identities": "email", "reason": "x"}, "identities"),
        ({"event_id": "e-1", "identities": [{"key": "email_address", "value": EMAIL}], "reason": "x", "y": 1}, "y"),
    ],
)
async def test_a_signed_delivery_of_the_wrong_shape_is_invalid_input(
    client: Client, body: dict[str, Any], named: str
) -> None:
    response = await client.deliver(body)
    assert named in assert_error(response, 400, "INVALID_INPUT")


async def test_the_webhook_needs_no_bearer_token_but_the_api_still_does(client: Client) -> None:
    response = await client.deliver(event("evt-9009", ("email_address", "never.seen@example.org")))
    assert response.status_code == 200, response.text
    api = await client.http.post(BASE, json={"identities": []})
    assert_error(api, 401, "UNAUTHENTICATED")


async def test_a_no_op_event_replayed_to_another_replica_or_after_a_restart_is_refused(
    driver: AsyncDriver, hook_settings: tuple[Settings, Tokens]
) -> None:
    app_config, _ = hook_settings
    raw, headers = signed(event("evt-8100", ("email_address", "never.seen@example.org")))
    async with serving(app_config) as one, serving(app_config) as two:
        first = await one.post(WEBHOOK, content=raw, headers=headers)
        assert first.json()["status"] == "nothing to erase", first.text
        replay = await two.post(WEBHOOK, content=raw, headers=headers)
    assert "already processed" in assert_error(replay, 409, "CONFLICT")
    async with serving(app_config) as restarted:
        again = await restarted.post(WEBHOOK, content=raw, headers=headers)
    assert_error(again, 409, "CONFLICT")


async def test_concurrent_deliveries_of_one_event_to_two_replicas_are_processed_once(
    driver: AsyncDriver, hook_settings: tuple[Settings, Tokens]
) -> None:
    app_config, _ = hook_settings
    raw, headers = signed(event("evt-8200", ("email_address", "never.seen@example.org")))
    async with serving(app_config) as one, serving(app_config) as two:
        responses = await asyncio.gather(
            *(replica.post(WEBHOOK, content=raw, headers=headers) for replica in (one, two, one, two))
        )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]


async def test_an_ambiguous_event_may_be_delivered_again_once_it_is_resolvable(client: Client) -> None:
    one = await client.push(("email_address", EMAIL))
    other = await client.push(("phone_number", OTHER_PHONE))
    body = event("evt-8300", ("email_address", EMAIL), ("phone_number", OTHER_PHONE))
    assert_error(await client.deliver(body), 409, "CONFLICT")
    await client.http.delete(f"{BASE}/{other}", headers=bearer(client.tokens.all))  # now only one customer matches

    again = await client.deliver(body)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "erased"
    assert not await client.exists(one)
