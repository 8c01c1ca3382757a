"""Shared benchmark plumbing: a scratch Neo4j of the benchmark's own, a real `idgraph serve` in front of it,
interleaved timing, memory readings, and the report file with its summary of targets.

Figures on a shared 2-core machine are noisy, so every figure is measured side by side with its baseline in
the same run (samples interleaved round-robin) and reported as a ratio as well as in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from neo4j import AsyncDriver

from app.auth import add_token
from app.config import REPO_ROOT
from app.db import localserver
from bench.client import KeepAliveClient

REPORT = REPO_ROOT / "docs" / "benchmarks.md"
WORK = REPO_ROOT / "var" / "bench"
TARGETS = WORK / "targets.json"  # what each benchmark of this run measured against its targets (bench.summary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# Servers scratch_database started, by Bolt URI, so their process can be found (neo4j_pid).
_servers: dict[str, localserver.LocalServer] = {}


@contextlib.contextmanager
def scratch_database(
    name: str,
    heap: str = "2g",
    *,
    pagecache_mb: int | None = None,
    tx_memory_mb: int | None = None,
    tx_timeout_s: int | None = None,
    reuse_given: bool = True,
) -> Iterator[str]:
    """BENCH_NEO4J_URI if set and `reuse_given` (it will be wiped), else a fresh neo4j-local of the benchmark's own.

    `heap` is the JVM's -Xmx; the other settings are neo4j-local's (NEO4J_LOCAL_PAGECACHE_MB, _TX_MEMORY_MB and
    _TX_TIMEOUT_S, see docs/operations.md); None keeps neo4j-local's default (256 MiB, 512 MiB, 60 s).
    """
    given = os.environ.get("BENCH_NEO4J_URI")
    if given and reuse_given:
        yield given
        return
    server = localserver.LocalServer(home=WORK / name, port=free_port(), heap=heap)
    localserver.stop(server)
    shutil.rmtree(server.home, ignore_errors=True)
    server.home.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "NEO4J_LOCAL_PAGECACHE_MB": pagecache_mb,
        "NEO4J_LOCAL_TX_MEMORY_MB": tx_memory_mb,
        "NEO4J_LOCAL_TX_TIMEOUT_S": tx_timeout_s,
    }
    with _environment({k: str(v) for k, v in settings.items() if v is not None}):
        localserver.start(server, say=lambda m: print(m, flush=True))  # passes its environment on to the server
    _servers[server.uri] = server
    try:
        yield server.uri
    finally:
        _servers.pop(server.uri, None)
        localserver.stop(server)  # a clean shutdown: the store files hold everything now
        store = server.home / "data" / "databases" / "neo4j"
        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**20
        print(f"scratch database {name}: store files {size:,.0f} MiB at shutdown", flush=True)
        shutil.rmtree(server.home, ignore_errors=True)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_server(uri: str) -> localserver.LocalServer | None:
    """The neo4j-local that scratch_database started for `uri`; None for BENCH_NEO4J_URI (not ours to stop)."""
    return _servers.get(uri)


def neo4j_pid(uri: str) -> int | None:
    """The process of a server scratch_database started, or None (BENCH_NEO4J_URI, docker)."""
    server = _servers.get(uri)
    return server.pid() if server is not None else None


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far, from /proc/<pid>/stat; None when unreadable."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3, utime 14, stime 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(uri: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an `idgraph` child process: this one's, without any NEO4J_* or IDGRAPH_* setting of
    the caller's shell (its strategy, tokens, limits), pointed at `uri` and `var_dir`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "IDGRAPH_"))}
    env.update(NEO4J_URI=uri, IDGRAPH_VAR_DIR=str(var_dir))
    env.update(IDGRAPH_ERASURE_KEY="idgraph-benchmark-erasure-key-0123456789")  # 32 characters at least
    env.update(extra)
    return env


@dataclass(frozen=True)
class Served:
    """A running `idgraph serve` child process and a token for it."""

    base_url: str
    token: str
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@contextlib.asynccontextmanager
async def idgraph_serve(
    uri: str, scopes: Sequence[str] = ("identity:read",), **extra_env: str
) -> AsyncIterator[Served]:
    """`idgraph serve` on a free loopback port against `uri` (migrated), as a child process, ready to answer."""
    with tempfile.TemporaryDirectory() as var:
        token = add_token(Path(var) / "tokens.json", "bench", list(scopes))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=REPO_ROOT,
            env=child_env(uri, Path(var), **extra_env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
                for _ in range(240):
                    if server.poll() is not None:
                        raise SystemExit(f"idgraph serve exited with status {server.returncode} before it was ready")
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.5)
                else:
                    raise SystemExit("idgraph serve was not ready within 120 s")
            yield Served(base_url, token, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


RESOLVE = """query($key: String!, $value: String!) {
  resolve(identities: [{key: $key, value: $value}]) { status customer { id skills profiles { id } } }
}"""


async def graphql_resolve(http: KeepAliveClient, served: Served, key: str, value: str) -> dict[str, Any]:
    """One GraphQL resolve over HTTP; raises RuntimeError on anything but a 200 without errors."""
    reply = await http.post_json(
        "/graphql", {"query": RESOLVE, "variables": {"key": key, "value": value}}, served.headers
    )
    return graphql_data(reply.status, reply.json(), "resolve")


def graphql_data(status: int, body: dict[str, Any], operation: str) -> dict[str, Any]:
    """The body of a GraphQL reply; RuntimeError unless it is a 200 without errors."""
    if status != 200 or body.get("errors"):
        errors = body.get("errors") or [{}]
        raise RuntimeError(f"{operation} failed: HTTP {status} {errors[0].get('message', '')}".strip())
    return body


def process_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB, from /proc/<pid>/status; {} when unreadable."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return found


async def neo4j_heap_mb(driver: AsyncDriver) -> dict[str, float]:
    """Heap used / committed / max of the Neo4j JVM in MiB, from its JMX memory bean; {} when not available."""
    try:
        records, _, _ = await driver.execute_query(
            "CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes "
            "RETURN attributes.HeapMemoryUsage.value.properties AS heap",
            routing_="r",
        )
    except Exception:
        return {}
    if not records or not records[0]["heap"]:
        return {}
    heap = records[0]["heap"]
    return {name: heap[name] / 2**20 for name in ("used", "committed", "max") if name in heap}


@dataclass(frozen=True)
class Stats:
    name: str
    samples: int
    median_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, name: str, seconds: Sequence[float]) -> Stats:
        ms = sorted(s * 1000 for s in seconds)
        return cls(name, len(ms), statistics.median(ms), _pct(ms, 95), _pct(ms, 99))

    def cells(self) -> list[str]:
        """Median, p95 and p99 in ms, as table cells."""
        return [f"{self.median_ms:.2f}", f"{self.p95_ms:.2f}", f"{self.p99_ms:.2f}"]


def _pct(sorted_ms: Sequence[float], pct: float) -> float:
    index = min(len(sorted_ms) - 1, round(pct / 100 * (len(sorted_ms) - 1)))
    return sorted_ms[index]


async def interleaved(
    calls: dict[str, Callable[[int], Awaitable[object]]],
    rounds: int,
    warmup: int = 200,
    every: Mapping[str, int] | None = None,
) -> dict[str, Stats]:
    """Time each call `rounds` times, round-robin, so machine noise hits every call alike. Each round takes the
    calls in a shuffled order (the same one every run), so no call is always timed right after the same other one
    (say, while the service that answered it is still busy finishing the request). A call named in `every` is timed
    in one round of every that many (a side figure that needs fewer samples than the targets' calls)."""
    every = every or {}
    for n in range(warmup):
        for call in calls.values():
            await call(n)
    names = list(calls)
    shuffle = random.Random(rounds).shuffle
    samples: dict[str, list[float]] = {name: [] for name in calls}
    started = time.perf_counter()
    for n in range(rounds):
        if n and rounds >= 1000 and n % (rounds // 5) == 0:
            print(f"  {n:,} of {rounds:,} rounds in {time.perf_counter() - started:.0f} s", flush=True)
        order = [name for name in names if n % every.get(name, 1) == 0]
        shuffle(order)
        for name in order:
            start = time.perf_counter()
            await calls[name](n)
            samples[name].append(time.perf_counter() - start)
    return {name: Stats.of(name, s) for name, s in samples.items()}


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def command_line(module: str, args: argparse.Namespace) -> str:
    """The command that reruns `python -m module` with every option of `args` spelled out."""
    words = [f".venv/bin/python -m {module}"]
    for name, value in vars(args).items():
        shown = (
            " ".join(str(v) for v in value)
            if isinstance(value, list)
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
        words.append(f"--{name.replace('_', '-')} {shown}")
    return " ".join(words)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(key: str, title: str, command: str, body: str) -> None:
    """Replace (or add) one benchmark's section of docs/benchmarks.md, leaving the others as they are."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    text = (
        REPORT.read_text()
        if REPORT.exists()
        else "# Benchmarks\n\nEvery figure below was printed by the command shown with it.\n"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{key} -->\n## {title}\n\nCommand: `{command}`  \nRun: {stamp} on {machine()}\n\n"
        f"{body.strip()}\n<!-- /bench:{key} -->"
    )
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    REPORT.write_text(text)
    print(f"wrote the '{title}' section of {Path(REPORT).relative_to(REPO_ROOT)}")


@dataclass(frozen=True)
class Target:
    """One target of the issue, as a benchmark of this run measured it."""

    name: str
    target: str
    measured: str
    met: bool


def record_targets(benchmark: str, command: str, targets: Sequence[Target]) -> None:
    """Keep what `benchmark` measured against its targets for `python -m bench.summary` (replacing its last run)."""
    WORK.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Any] = json.loads(TARGETS.read_text()) if TARGETS.exists() else {}
    runs[benchmark] = {
        "command": command,
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "targets": [asdict(t) for t in targets],
    }
    TARGETS.write_text(json.dumps(runs, indent=2) + "\n")
