"""No personal data in the logs: a full run of operations, refusals and an unexpected failure, with every log record
captured at DEBUG, holds none of the phone numbers, emails or account ids it used, in any spelling."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.db.driver import AsyncDriver
from app.services.identity import IdentityService
from tests.e2e.graphql_harness import Api
from tests.e2e.test_graphql_api import (
    CUSTOMER_QUERY,
    ERASE_CUSTOMER,
    EXPLAIN,
    LINK,
    MERGE,
    NORMALIZE,
    RESOLVE,
    UNLINK,
    UNMERGE,
    UPSERT,
    UPSERT_MANY,
)

pytestmark = pytest.mark.neo4j

PHONE_RAW, PHONE = "(212) 555-0142", "+12125550142"
PHONE2_RAW, PHONE2 = "+44 20 7946 0958", "+442079460958"
EMAIL_RAW, EMAIL = "Grace.Hopper@Navy.Example.ORG", "grace.hopper@navy.example.org"
EMAIL2 = "ghopper@cobol.example.net"
ACCOUNT1, ACCOUNT2 = "ACCT-77123", "ACCT-99001"
BAD_PHONE = "555-01"
SECRETS = [PHONE_RAW, PHONE, PHONE[1:], PHONE2_RAW, PHONE2, EMAIL_RAW, EMAIL, EMAIL2, ACCOUNT1, ACCOUNT2, BAD_PHONE]


def identity(key: str, value: str) -> dict[str, str]:
    return {"key": key, "value": value}


def texts_of(record: logging.LogRecord) -> list[str]:
    """Everything a handler could write for the record: the message, its arguments, a traceback, a stack."""
    formatter = logging.Formatter()
    texts = [record.getMessage(), repr(record.msg), repr(record.args)]
    if record.exc_info:
        texts.append(formatter.formatException(record.exc_info))
    if record.exc_text:
        texts.append(record.exc_text)
    if record.stack_info:
        texts.append(record.stack_info)
    texts.append(
        repr({k: v for k, v in vars(record).items() if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__})
    )
    return texts


async def run_everything(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operation once, the usual refusals, and an unexpected exception whose message quotes the values."""
    first = (
        await api.data(
            UPSERT,
            {
                "input": {
                    "source": "crm",
                    "sourceId": "C-1",
                    "identities": [identity("phone_number", PHONE_RAW), identity("email_address", EMAIL_RAW)],
                    "attributes": {"tier": "Platinum"},
                }
            },
        )
    )["upsertProfile"]
    a = first["profile"]["id"]
    many = (
        await api.data(
            UPSERT_MANY,
            {
                "inputs": [
                    {
                        "source": "ivr",
                        "identities": [identity("phone_number", PHONE), identity("account_id", ACCOUNT1)],
                    },
                    {
                        "source": "web",
                        "identities": [identity("phone_number", PHONE2_RAW), identity("account_id", ACCOUNT2)],
                    },
                ]
            },
        )
    )["upsertProfiles"]
    b, c = many[0]["profile"]["id"], many[1]["profile"]["id"]
    await api.data(RESOLVE, {"identities": [identity("phone_number", PHONE_RAW)], "token": first["consistencyToken"]})
    await api.data(RESOLVE, {"identities": [identity("email_address", EMAIL2), identity("phone_number", BAD_PHONE)]})
    await api.data(CUSTOMER_QUERY, {"id": a})
    await api.data(EXPLAIN, {"a": a, "b": b})
    await api.data(NORMALIZE, {"key": "email_address", "value": EMAIL_RAW})
    await api.data(
        LINK, {"id": a, "identities": [identity("email_address", EMAIL2), identity("phone_number", BAD_PHONE)]}
    )
    # Refusals: bad values, unknown keys, a conflict, a wrong scope, a malformed variable, a document quoting values.
    await api.error(RESOLVE, {"identities": [identity("phone_number", BAD_PHONE)]})
    await api.error(MERGE, {"source": c, "target": a})
    await api.error(UPSERT, {"input": {"source": "crm", "identities": [identity("phone_number", BAD_PHONE)]}})
    await api.error(UPSERT, {"input": {"source": "crm", "identities": [{"key": "phone_number", "valu": PHONE}]}})
    await api.error(
        UPSERT, {"input": {"source": "crm", "identities": [identity("email_address", EMAIL)]}}, token=api.tokens.read
    )
    await api.error(f'{{ resolve(identities: [{{key: "account_id", value: "{ACCOUNT1}"}}]) {{ statu }} }}')
    await api.error(f'{{ resolve(identities: [{{key: "email_address", value: "{EMAIL}"}}]) {{ status }} }} {{')
    await api.data(MERGE, {"source": c, "target": a, "force": True, "reason": "same person"})
    await api.data(UNMERGE, {"source": c, "target": a})
    await api.data(UNLINK, {"id": b, "identity": identity("account_id", ACCOUNT1)})
    await api.data(ERASE_CUSTOMER, {"id": a, "request": "dsr-1", "reason": "GDPR"})
    await api.error(
        UPSERT, {"input": {"source": "crm", "identities": [identity("email_address", EMAIL)]}}
    )  # suppressed

    async def explode(self: IdentityService, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"constraint violated by {PHONE} / {EMAIL} / {ACCOUNT2}")

    with monkeypatch.context() as patch:
        patch.setattr(IdentityService, "resolve", explode)
        error = await api.error(RESOLVE, {"identities": [identity("phone_number", PHONE2)]})
        assert error["extensions"]["code"] == "INTERNAL"


async def test_no_identity_value_reaches_any_log_record(
    api: Api, driver: AsyncDriver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `idgraph serve` keeps the Neo4j driver's own logger at WARNING (its DEBUG lines echo query parameters).
    monkeypatch.setattr(logging.getLogger("neo4j"), "level", logging.WARNING)
    caplog.set_level(logging.DEBUG)

    await run_everything(api, monkeypatch)

    records = caplog.records
    assert any(r.name == "app.graphql.errors" and r.levelno == logging.ERROR for r in records)  # the INTERNAL one
    assert any(r.name.startswith("app.services.") for r in records)  # the use cases did log
    leaks = [
        (r.name, secret, text[:200])
        for r in records
        for text in texts_of(r)
        for secret in SECRETS
        if secret.lower() in text.lower()
    ]
    assert leaks == []
