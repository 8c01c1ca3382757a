"""A real `idgraph serve` child process on a free loopback port, as `make run` starts it, and a GraphQL client for it.

Its stdout and stderr go to a log file the privacy watch reads at the end of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app import auth
from app.config import REPO_ROOT
from tests.conftest import free_port
from tests.erasure_key import ERASURE_KEY as ERASURE_KEY  # the failure suite's modules import it from here
from tests.failure import privacy

# Variables that would point the child at another database or var/ directory than the one given.
_FOREIGN_ENV = (
    "NEO4J_URI",
    "NEO4J_USER",
    "NEO4J_PASSWORD",
    "NEO4J_DATABASE",
    "IDGRAPH_VAR_DIR",
    "IDGRAPH_TOKENS_FILE",
    "IDGRAPH_ERASURE_KEY",
    "IDGRAPH_STRATEGY",
)
START_WAIT_S = 60.0

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Database:
    uri: str
    user: str | None = None
    password: str | None = None
    name: str = "neo4j"


def child_env(db: Database, var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(
        NEO4J_URI=db.uri,
        NEO4J_DATABASE=db.name,
        IDGRAPH_VAR_DIR=str(var_dir),
        IDGRAPH_TOKENS_FILE=str(var_dir / "tokens.json"),
        IDGRAPH_ERASURE_KEY=ERASURE_KEY,
        IDGRAPH_LOCAL_DB="neo4j-local",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)  # may replace the defaults above (another IDGRAPH_ERASURE_KEY, ...)
    if db.user:
        env.update(NEO4J_USER=db.user, NEO4J_PASSWORD=db.password or "")
    return env


class Served:
    """One `idgraph serve` process; `token` has every scope."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path, token: str) -> None:
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout)

    def async_client(self, timeout: float = 60.0, connections: int = 32) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(db: Database, var_dir: Path, *, ready: bool = True, **extra_env: str) -> Served:
    """Start `idgraph serve` on `db`; wait until /healthz answers (and /readyz, when `ready`)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    token = auth.add_token(var_dir / "tokens.json", "failure-suite", list(auth.SCOPES))
    port = free_port()
    log = privacy.watch_file(var_dir / f"serve-{port}.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=child_env(db, var_dir, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    served = Served(process, port, log, token)
    try:
        _wait(served, "/readyz" if ready else "/healthz")
    except BaseException:
        served.stop()
        raise
    return served


def _wait(served: Served, path: str) -> None:
    deadline = time.monotonic() + START_WAIT_S
    with httpx.Client(base_url=served.base_url, timeout=5.0) as http:
        while True:
            code = served.process.poll()
            assert code is None, f"idgraph serve exited with {code}:\n{served.log_tail()}"
            try:
                if http.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"idgraph serve: {path} not 200 within {START_WAIT_S:g}s"
            time.sleep(0.2)


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
