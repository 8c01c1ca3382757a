"""The real HTTP app in-process for the REST, webhook and metrics tests: `create_app(settings)` with its lifespan
running (driver pool, use cases) against the session's Neo4j, called through httpx's ASGI transport."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from app.config import Settings
from app.signature import sign
from app.web.app import create_app
from tests.e2e.graphql_harness import Tokens as Tokens
from tests.e2e.graphql_harness import make_tokens

BASE = "/api/v2/customer-data-platform/identities"
WEBHOOK = "/webhooks/crm/erasure"
SECRET = "test-webhook-secret"


def app_settings(settings: Settings, var_dir: Path, **changes: Any) -> tuple[Settings, Tokens]:
    """The session's settings (its database) with a tokens file of the caller's own and the webhook secret."""
    tokens_file = var_dir / "tokens.json"
    tokens = make_tokens(tokens_file)
    changes.setdefault("webhook_secret", SECRET)
    return replace(settings, var_dir=var_dir, tokens_file=tokens_file, **changes), tokens


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app of `settings`, started (lifespan) and stopped around the block, as an httpx client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # What a server does with the lifespan's state: each request gets a shallow copy of it.
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://idgraph.test", timeout=30.0) as client:
            yield client


def signed(body: dict[str, Any], *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery: the raw body and the headers that sign it."""
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time() if at is None else at))
    headers = {
        "content-type": "application/json",
        "x-idgraph-timestamp": timestamp,
        "x-idgraph-signature": sign(secret, timestamp, raw),
    }
    return raw, headers


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error response with this status and code (the GraphQL error shape)."""
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == code, response.text
    message: str = errors[0]["message"]
    return message
