"""`idgraph serve` as the tests start it: a child process on a free loopback port, as `make run` starts it.

One environment for every idgraph child process the tests start (`serve`, `ingest`, `db up|down`, workers): the test
process's own, without any NEO4J_* or IDGRAPH_* setting of the caller's shell (another database, var/ directory,
tokens file, erasure key, strategy, limits or timeouts), pointed at the database and var/ directory the test gives.
PYTHONPATH is kept: the child runs `python -m app.cli` from the checkout, whose directory comes first on its path.

The serve process's stdout and stderr go to a log file the privacy watch reads at the end of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import REPO_ROOT
from tests.conftest import free_port
from tests.failure import privacy

# Every variable with these prefixes is the caller's setting, never the test's: it is dropped from a child's
# environment, and the test sets what it means the child to use.
FOREIGN_PREFIXES = ("NEO4J_", "IDGRAPH_")
START_BOUND_S = 60.0
STOP_BOUND_S = 20.0
POLL_S = 0.1


def child_env(
    neo4j_uri: str,
    var_dir: Path,
    *,
    database: str | None = None,
    user: str | None = None,
    password: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of an idgraph child process bound to one database and one var/ directory, plus `extra`.

    IDGRAPH_LOCAL_DB=neo4j-local whatever Docker engine answers: docker compose would publish its own fixed port.
    `extra` is applied last and may replace any of the above.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update(
        NEO4J_URI=neo4j_uri,
        IDGRAPH_VAR_DIR=str(var_dir),
        IDGRAPH_LOCAL_DB="neo4j-local",
        PYTHONUNBUFFERED="1",
    )
    if database:
        env["NEO4J_DATABASE"] = database
    if user:
        env.update(NEO4J_USER=user, NEO4J_PASSWORD=password or "")
    env.update(extra)
    return env


@dataclass
class ServeProcess:
    """One running `idgraph serve` child process."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate it (kill it after STOP_BOUND_S); a no-op when it has already exited."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_until(self, path: str, bound_s: float = START_BOUND_S) -> None:
        """Until GET `path` answers 200; fails with the log's tail when the process exits or the time is up."""
        deadline = time.monotonic() + bound_s
        with httpx.Client(base_url=self.base_url, timeout=5.0) as http:
            while True:
                code = self.process.poll()
                assert code is None, f"idgraph serve exited with {code}:\n{self.log_tail()}"
                try:
                    if http.get(path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (
                    f"idgraph serve: {path} not 200 within {bound_s:g}s:\n{self.log_tail()}"
                )
                time.sleep(POLL_S)


def start_serve(
    env: Mapping[str, str],
    log: Path,
    *,
    port: int | None = None,
    cli_args: Sequence[str] = (),
    serve_args: Sequence[str] = (),
    wait_for: str | None = "/healthz",
    bound_s: float = START_BOUND_S,
) -> ServeProcess:
    """`python -m app.cli [cli_args] serve --host 127.0.0.1 --port PORT [serve_args]` from the checkout, its output
    in `log` (watched by the privacy scan); returns once `wait_for` answers 200 (at once when it is None)."""
    port = free_port() if port is None else port
    privacy.watch_file(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "app.cli", *cli_args, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *serve_args],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    served = ServeProcess(process, port, log)
    if wait_for is not None:
        try:
            served.wait_until(wait_for, bound_s)
        except BaseException:
            served.stop()
            raise
    return served


@contextmanager
def serve_process(
    env: Mapping[str, str],
    log: Path,
    *,
    port: int | None = None,
    cli_args: Sequence[str] = (),
    serve_args: Sequence[str] = (),
    wait_for: str | None = "/healthz",
    bound_s: float = START_BOUND_S,
) -> Iterator[ServeProcess]:
    """start_serve() for the length of a block; stopped when the block ends, however it ends."""
    served = start_serve(
        env, log, port=port, cli_args=cli_args, serve_args=serve_args, wait_for=wait_for, bound_s=bound_s
    )
    try:
        yield served
    finally:
        served.stop()
