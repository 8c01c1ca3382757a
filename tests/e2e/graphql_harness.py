"""Drive the real HTTP app in-process: `create_app(settings)` with its lifespan running (the driver's pool, the use
cases), called through httpx's ASGI transport with real bearer tokens from a tokens file of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import auth
from app.config import Settings
from app.web.app import create_app

JSONObject = dict[str, Any]


class Lifespan:
    """Runs an ASGI app's lifespan as a server does (uvicorn's way) and hands each request a copy of its state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lifespan:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}

        async def run() -> None:
            await self.app(scope, self._to_app.get, self._from_app.put)

        self._task = asyncio.create_task(run())
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {message.get('message', message['type'])}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._from_app.get()
        await self._task
        if message["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"the app did not stop cleanly: {message.get('message', message['type'])}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens of the test's tokens file, one per combination of scopes the tests need."""

    read: str
    write: str
    erase: str
    all: str


def make_tokens(path: Path) -> Tokens:
    return Tokens(
        read=auth.add_token(path, "reader", [auth.READ]),
        write=auth.add_token(path, "writer", [auth.READ, auth.WRITE]),
        erase=auth.add_token(path, "eraser", [auth.READ, auth.ERASE]),
        all=auth.add_token(path, "steward", list(auth.SCOPES)),
    )


def settings_with_tokens(settings: Settings, var_dir: Path, **changes: Any) -> tuple[Settings, Tokens]:
    """The session's settings (its database) with a var/ and a tokens file of the caller's own."""
    tokens_file = var_dir / "tokens.json"
    tokens = make_tokens(tokens_file)
    return replace(settings, var_dir=var_dir, tokens_file=tokens_file, **changes), tokens


class GraphQLError(AssertionError):
    pass


class Api:
    """A GraphQL client of the in-process app; each call names the token it sends (None: no header)."""

    def __init__(self, http: httpx.AsyncClient, tokens: Tokens) -> None:
        self.http = http
        self.tokens = tokens

    async def post(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        body: JSONObject = {"query": query}
        if variables is not None:
            body["variables"] = dict(variables)
        return await self.http.post("/graphql", json=body, headers=sent)

    async def data(self, query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None) -> Any:
        """The `data` of a request that must succeed."""
        response = await self.post(query, variables, token=self.tokens.all if token is None else token)
        assert response.status_code == 200, response.text
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"unexpected errors: {body['errors']}")
        return body["data"]

    async def error(
        self, query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> JSONObject:
        """The first error of a request that must fail with a GraphQL error (HTTP 200, `errors` set)."""
        response = await self.post(query, variables, token=self.tokens.all if token is None else token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("errors"), f"expected an error, got {body}"
        error: JSONObject = body["errors"][0]
        return error

    async def code(self, query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None) -> str:
        """The extensions.code of the first error of a request that must fail."""
        error = await self.error(query, variables, token=token)
        code: str = error.get("extensions", {}).get("code", "")
        return code


@contextlib.asynccontextmanager
async def running_api(settings: Settings, tokens: Tokens) -> AsyncIterator[Api]:
    """The app of `settings`, started (lifespan) and stopped around the block."""
    async with Lifespan(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://idgraph.test", timeout=30.0) as http:
            yield Api(http, tokens)
