"""The one JSON shape of each domain object (app/jsonshape.py), shared by the REST API, the webhook and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from starlette.requests import Request

from app import jsonshape
from app.auth import Principal
from app.cli import commands
from app.cli.main import main
from app.config import Settings
from app.domain.model import (
    Assurance,
    AttributeValue,
    Customer,
    ErasurePlan,
    ErasureReceipt,
    ExportRow,
    IdentityKey,
    MergeEdge,
    Profile,
    ProfileInput,
    Rejection,
    RejectionReason,
    Resolution,
    ResolutionStatus,
    StoredIdentity,
    UpsertResult,
)
from app.domain.validation import SNAKE_CASE, check_profile_input
from app.errors import InvalidInput
from app.rest import api
from app.web.observability import Metrics

AT = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
PHONE = IdentityKey("phone_number", "+14155552671")
EMAIL = IdentityKey("email_address", "john.doe@example.com")


def stored(key: IdentityKey, *, blocked: bool = False, saturated: bool = False, count: int = 1) -> StoredIdentity:
    return StoredIdentity(key.key, key.value, "E164", "E164/test", blocked, saturated, count)


def customer() -> Customer:
    crm = Profile("p-1", "crm", "C-1", AT, AT + timedelta(microseconds=250), {"tier": "Gold"}, {}, (PHONE, EMAIL))
    ivr = Profile("p-2", "ivr", None, AT, AT, {}, {}, (PHONE,))
    return Customer(
        id="p-1",
        profiles=(crm, ivr),
        identities=(stored(PHONE, count=2), stored(EMAIL, blocked=True)),
        links=(),
        merges=(MergeEdge("p-2", "p-1", AT, "steward", "duplicate"),),
        attributes={"tier": AttributeValue("tier", "Gold", "p-1", "crm", AT)},
        skills=("Premium_Support",),
        conflicts=(),
        truncated=False,
    )


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_times_are_rfc3339_utc_with_z_and_always_microseconds() -> None:
    assert jsonshape.rfc3339(AT) == "2026-12-05T17:00:00.000000Z"
    assert jsonshape.rfc3339(AT.replace(microsecond=123456)) == "2026-12-05T17:00:00.123456Z"
    paris = timezone(timedelta(hours=1))
    assert jsonshape.rfc3339(datetime(2026, 12, 5, 18, 0, tzinfo=paris)) == "2026-12-05T17:00:00.000000Z"


def test_an_identity_carries_its_state_linking_blocked_and_saturated() -> None:
    assert jsonshape.identity_json(stored(PHONE, count=2)) == {
        "key": "phone_number",
        "value": "+14155552671",
        "linking": True,
        "blocked": False,
        "saturated": False,
        "contested": False,
        "profile_count": 2,
    }
    assert jsonshape.identity_json(stored(PHONE, blocked=True))["linking"] is False
    assert jsonshape.identity_json(stored(PHONE, saturated=True))["linking"] is False
    contested = jsonshape.identity_json(replace(stored(PHONE), contested_key="account_id", contested_values=2))
    assert (contested["linking"], contested["contested"]) == (False, True)


def test_a_profile_of_a_customer_has_the_same_identity_objects_as_the_customer() -> None:
    shown = jsonshape.customer_json(customer())
    by_value = {i["value"]: i for i in shown["identities"]}
    for profile in shown["profiles"]:
        assert all(i == by_value[i["value"]] for i in profile["identities"])
    assert shown["profiles"][0]["identities"][1]["blocked"] is True
    assert shown["profiles"][0]["updated_at"] == "2026-12-05T17:00:00.000250Z"


def test_every_time_of_every_shape_has_the_one_format() -> None:
    found = Resolution(ResolutionStatus.FOUND, customer(), (), (PHONE,), Assurance.WEAK)
    receipt = ErasureReceipt("req-1", "COMPLETED", "cli", "asked", AT, 2, 2, 2)
    shapes = [jsonshape.resolution_json(found), jsonshape.receipt_json(receipt)]
    times = [s for shape in shapes for s in strings(shape) if s.startswith("2026-")]
    assert len(times) == 7 and all(TIME.fullmatch(t) for t in times)
    assert not any("+00:00" in s for shape in shapes for s in strings(shape))


def test_a_push_answer_without_the_customer_names_no_identity_state() -> None:
    whole = customer()
    result = UpsertResult(whole.profiles[0], whole, True, (Rejection("x", RejectionReason.UNKNOWN_KEY),), "tok")
    shown = jsonshape.upsert_json(result, with_customer=False)
    assert set(shown) == {"profile", "created", "rejected", "consistency_token"}
    assert shown["profile"]["identities"] == [jsonshape.key_json(PHONE), jsonshape.key_json(EMAIL)]
    assert jsonshape.upsert_json(result)["customer"] == jsonshape.customer_json(whole)


def test_export_lines_plans_and_receipts_have_their_documented_keys() -> None:
    assert jsonshape.export_json(ExportRow("p-2", "ivr", None, "p-1")) == {
        "profile_id": "p-2",
        "source": "ivr",
        "source_id": None,
        "customer_id": "p-1",
    }
    plan = ErasurePlan(("p-1", "p-2"), (EMAIL,), (PHONE,))
    assert jsonshape.plan_json(plan) == {
        "profile_ids": ["p-1", "p-2"],
        "identities_deleted": [{"key": "email_address", "value": "john.doe@example.com"}],
        "identities_kept": [{"key": "phone_number", "value": "+14155552671"}],
    }
    receipt = ErasureReceipt("req-1", "COMPLETED", "cli", "asked", AT, 2, 1, 1)
    assert set(jsonshape.receipt_json(receipt)) == {
        "request_id",
        "status",
        "requested_by",
        "reason",
        "at",
        "profiles_deleted",
        "identities_deleted",
        "suppressed",
    }


class OneAnswer:
    """The use cases, as far as `resolve` goes: always the same resolution."""

    def __init__(self, resolution: Resolution) -> None:
        self.resolution = resolution

    async def resolve(self, pairs: object, **_: object) -> Resolution:
        return self.resolution


def test_rest_and_the_cli_answer_a_resolution_with_the_same_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = Resolution(ResolutionStatus.FOUND, customer(), (), (PHONE,), Assurance.WEAK)
    service = OneAnswer(found)

    @contextlib.asynccontextmanager
    async def engine(settings: Settings, key: str = "none") -> AsyncIterator[tuple[OneAnswer, None]]:
        yield service, None

    monkeypatch.setattr(commands, "engine", engine)
    assert main(["resolve", "phone_number=+14155552671"]) == 0
    from_cli = json.loads(capsys.readouterr().out)

    request = Request({"type": "http", "method": "POST", "headers": [], "state": {"service": service}})
    body = b'{"identities": [{"key": "phone_number", "value": "+14155552671"}]}'
    response = asyncio.run(api.RestApi(Metrics()).resolve(request, Principal("reader", frozenset()), body))
    from_rest = json.loads(bytes(response.body))

    assert from_cli == from_rest == jsonshape.resolution_json(found)
    assert from_cli["customer"]["identities"][0] == jsonshape.identity_json(stored(PHONE, count=2))
    assert importlib.util.find_spec("app.cli.jsonout") is None  # the command line's own shapes are gone


def refusal(check: Callable[[], object]) -> str:
    with pytest.raises(InvalidInput) as refused:
        check()
    return refused.value.message


def test_rest_bodies_are_refused_in_their_own_field_names_and_graphql_keeps_its_own() -> None:
    both = {"identities": [], "source_id": "C-1", "profile_id": "p-1"}
    assert refusal(lambda: api.profile_input(both)) == "give source_id or profile_id, not both"
    blank = {"identities": [], "source_id": " "}
    assert refusal(lambda: api.profile_input(blank)) == "source_id must be 1-256 characters"
    slashes = {"identities": [], "profile_id": "no/slashes"}
    assert refusal(lambda: api.profile_input(slashes)).startswith("profile_id must be 1-128")
    item = ProfileInput("crm", (), source_id="C-1", profile_id="p-1")
    assert refusal(lambda: check_profile_input(item)) == "give sourceId or profileId, not both"  # GraphQL's names
    assert refusal(lambda: check_profile_input(item, SNAKE_CASE)) == "give source_id or profile_id, not both"
