"""A real `idgraph serve` child process on a free loopback port, as `make run` starts it, and a GraphQL client for it.

Its stdout and stderr go to a log file the privacy watch reads at the end of the suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app import auth
from tests.conftest import free_port
from tests.erasure_key import ERASURE_KEY as ERASURE_KEY  # the failure suite's modules import it from here
from tests.serving import ServeProcess, start_serve
from tests.serving import child_env as _child_env

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Database:
    uri: str
    user: str | None = None
    password: str | None = None
    name: str = "neo4j"


def child_env(db: Database, var_dir: Path, **extra: str) -> dict[str, str]:
    """tests/serving.py's child environment on `db` and `var_dir`, with the suite's tokens file and erasure key."""
    return _child_env(
        db.uri,
        var_dir,
        database=db.name,
        user=db.user,
        password=db.password,
        # `extra` may replace these defaults (another IDGRAPH_ERASURE_KEY, ...)
        **{"IDGRAPH_TOKENS_FILE": str(var_dir / "tokens.json"), "IDGRAPH_ERASURE_KEY": ERASURE_KEY, **extra},
    )


@dataclass
class Served(ServeProcess):
    """One `idgraph serve` process; `token` has every scope."""

    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout)

    def async_client(self, timeout: float = 60.0, connections: int = 32) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )


def serve(db: Database, var_dir: Path, *, ready: bool = True, **extra_env: str) -> Served:
    """Start `idgraph serve` on `db`; wait until /healthz answers (and /readyz, when `ready`)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    token = auth.add_token(var_dir / "tokens.json", "failure-suite", list(auth.SCOPES))
    port = free_port()
    started = start_serve(
        child_env(db, var_dir, **extra_env),
        var_dir / f"serve-{port}.log",
        port=port,
        wait_for="/readyz" if ready else "/healthz",
    )
    return Served(started.process, started.port, started.log, token)


def graphql_body(query: str, variables: Mapping[str, Any] | None = None) -> JSONObject:
    body: JSONObject = {"query": query}
    if variables is not None:
        body["variables"] = dict(variables)
    return body


def error_codes(body: Any) -> list[str]:
    """The extensions.code of every error of a GraphQL response body ("" for an error without one)."""
    if not isinstance(body, dict):
        return []
    errors = body.get("errors") or []
    return [str((e.get("extensions") or {}).get("code", "")) if isinstance(e, dict) else "" for e in errors]
