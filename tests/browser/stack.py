"""The real stack the browser tests drive: an `idgraph serve` child process, its tokens, and a GraphQL client.

Data is loaded the way a CRM sync would load it: through GraphQL mutations on the running server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.auth import AUDIT, ERASE, READ, WRITE, add_token
from tests.erasure_key import ERASURE_KEY
from tests.failure import privacy
from tests.serving import ServeProcess, child_env, serve_process

CHROMIUM = os.environ.get("IDGRAPH_CHROMIUM", "/usr/bin/chromium")
# What works on a closed network as root: no sandbox, no GPU, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (install Debian's `chromium` package, or set IDGRAPH_CHROMIUM)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    return None


@dataclass(frozen=True)
class Tokens:
    steward: str  # identity:read, identity:write, identity:erase
    writer: str  # identity:read, identity:write
    reader: str  # identity:read
    auditor: str  # identity:read, identity:audit (the history panel)


def make_tokens(path: Path) -> Tokens:
    return Tokens(
        steward=add_token(path, "steward", [READ, WRITE, ERASE]),
        writer=add_token(path, "writer", [READ, WRITE]),
        reader=add_token(path, "reader", [READ]),
        auditor=add_token(path, "auditor", [READ, AUDIT]),
    )


Server = ServeProcess  # base_url, process, log, log_tail()


@contextmanager
def serve(
    *, neo4j_uri: str, var_dir: Path, tokens_file: Path, port: int, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """`idgraph serve` on a loopback port, as `make run` starts it, until the block ends (tests/serving.py)."""
    env = child_env(
        neo4j_uri,
        var_dir,
        **{
            "IDGRAPH_TOKENS_FILE": str(tokens_file),
            "IDGRAPH_ERASURE_KEY": ERASURE_KEY,
            # These tests are about the page, not latency: a machine busy with the rest of the suite may take seconds.
            "IDGRAPH_QUERY_TIMEOUT_S": "30",
            **(extra_env or {}),
        },
    )
    with serve_process(env, var_dir / "serve.log", port=port) as server:
        yield server


class GraphQLError(AssertionError):
    pass


class Api:
    """GraphQL over HTTP with a bearer token, as any client of the service calls it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60.0, headers={"authorization": f"Bearer {token}"})

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def aclose(self) -> None:
        await self.http.aclose()

    async def upsert(self, inputs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Upsert profiles; returns their ids in input order."""
        privacy.remember(i["value"] for item in inputs for i in item.get("identities", ()))
        data = await self(
            "mutation Load($inputs: [ProfileInput!]!) { upsertProfiles(inputs: $inputs) { profile { id } } }",
            inputs=list(inputs),
        )
        return [r["profile"]["id"] for r in data["upsertProfiles"]]

    async def customer_profiles(self, profile_id: str) -> set[str]:
        data = await self("query C($id: ID!) { customer(profileId: $id) { profiles { id } } }", id=profile_id)
        customer = data["customer"]
        return {p["id"] for p in customer["profiles"]} if customer else set()

    async def merge(self, source: str, target: str, reason: str, *, force: bool = False) -> None:
        await self(
            "mutation M($s: ID!, $t: ID!, $r: String, $f: Boolean!) { mergeProfiles(sourceProfileId: $s,"
            " targetProfileId: $t, reason: $r, force: $f) { id } }",
            s=source,
            t=target,
            r=reason,
            f=force,
        )


def identities(**by_key: str | list[str]) -> list[dict[str, str]]:
    out = []
    for key, values in by_key.items():
        for value in [values] if isinstance(values, str) else values:
            out.append({"key": key, "value": value})
    return out


# The reference example customer of the design notes, seen through three doors, and a second customer.
REFERENCE: list[dict[str, Any]] = [
    {
        "source": "crm",
        "sourceId": "C-1001",
        "identities": identities(
            phone_number="+14155552671", email_address="john.doe@example.com", account_id="ACCT-98765"
        ),
        "attributes": {"name": "John Doe", "tier": "Platinum", "last_order_date": "2026-10-15T14:30:00Z"},
    },
    {"source": "ivr", "sourceId": "IVR-5501", "identities": identities(phone_number="(415) 555-2671")},
    {
        "source": "webchat",
        "sourceId": "W-77",
        "identities": identities(email_address="john.doe@example.com"),
        "attributes": {"preferred_language": "en"},
    },
]
SECOND: list[dict[str, Any]] = [
    {
        "source": "crm",
        "sourceId": "C-2002",
        "identities": identities(
            phone_number="+44 20 7946 0958", email_address="jane.roe@example.com", account_id="ACCT-12345"
        ),
        "attributes": {"name": "Jane Roe", "tier": "Gold"},
    },
]


@dataclass(frozen=True)
class Loaded:
    crm: str
    ivr: str
    webchat: str
    jane: str


async def load_reference(api: Api) -> Loaded:
    crm, ivr, webchat = await api.upsert(REFERENCE)
    (jane,) = await api.upsert(SECOND)
    return Loaded(crm=crm, ivr=ivr, webchat=webchat, jane=jane)
