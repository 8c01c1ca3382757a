"""Shared benchmark plumbing: a scratch Neo4j of the benchmark's own, interleaved timing, and the report file.

Figures on a shared 2-core machine are noisy, so every figure is measured side by side with its baseline in
the same run (samples interleaved round-robin) and reported as a ratio as well as in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app import localserver
from app.config import REPO_ROOT

REPORT = REPO_ROOT / "docs" / "benchmarks.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def scratch_database(name: str, heap: str = "2g") -> Iterator[str]:
    """BENCH_NEO4J_URI if set (it will be wiped), else a fresh neo4j-local of the benchmark's own."""
    given = os.environ.get("BENCH_NEO4J_URI")
    if given:
        yield given
        return
    server = localserver.LocalServer(home=REPO_ROOT / "var" / "bench" / name, port=free_port(), heap=heap)
    localserver.stop(server)
    shutil.rmtree(server.home, ignore_errors=True)
    server.home.parent.mkdir(parents=True, exist_ok=True)
    localserver.start(server, say=lambda m: print(m, flush=True))
    try:
        yield server.uri
    finally:
        localserver.stop(server)
        shutil.rmtree(server.home, ignore_errors=True)


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


def _pct(sorted_ms: Sequence[float], pct: float) -> float:
    index = min(len(sorted_ms) - 1, round(pct / 100 * (len(sorted_ms) - 1)))
    return sorted_ms[index]


async def interleaved(
    calls: dict[str, Callable[[int], Awaitable[object]]], rounds: int, warmup: int = 200
) -> dict[str, Stats]:
    """Time each call `rounds` times, round-robin, so machine noise hits every call alike."""
    for n in range(warmup):
        for call in calls.values():
            await call(n)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for n in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            await call(n)
            samples[name].append(time.perf_counter() - start)
    return {name: Stats.of(name, s) for name, s in samples.items()}


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


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
