"""`idgraph changes` on the real Neo4j, run as a child process as an operator would: JSON Lines, --after, --type,
and --follow printing an event committed after it started, stopped with SIGINT (exit 0, no traceback)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
from neo4j import AsyncTransaction

from app.config import REPO_ROOT, Settings
from app.db.changes import Change, record_changes
from app.db.driver import AsyncDriver
from app.db.transactions import run_transaction
from app.domain.changes import Audit, ChangeType
from tests.erasure_key import ERASURE_KEY
from tests.serving import child_env

pytestmark = pytest.mark.neo4j

WAIT_S = 60.0  # bounds on a busy machine, never expected to be reached


async def write(driver: AsyncDriver, *changes: Change) -> None:
    async def work(tx: AsyncTransaction) -> None:
        await record_changes(tx, list(changes), Audit("steward", "req-1", "tidy"), now=datetime.now(UTC))

    await run_transaction(driver, work, database="neo4j", write=True, budget_s=30.0)


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return child_env(
        settings.neo4j_uri,
        tmp_path / "var",
        user=settings.neo4j_user,
        password=settings.neo4j_password,
        IDGRAPH_ERASURE_KEY=ERASURE_KEY,
    )


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "changes", *args]


async def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, command(*args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=WAIT_S
    )


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_it_prints_json_lines_after_a_cursor_and_of_the_types_asked(
    driver: AsyncDriver, env: dict[str, str]
) -> None:
    await write(driver, Change(ChangeType.PROFILE_CREATED, ("p1",), None, "p1"))
    await write(driver, Change(ChangeType.MERGE, ("p2", "p1"), "p2", "p1"), Change(ChangeType.UNMERGE, ("p2", "p1")))

    done = await run(env)
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    assert [e["type"] for e in events] == ["PROFILE_CREATED", "MERGE", "UNMERGE"]
    assert events[1] == {
        "cursor": events[1]["cursor"],
        "type": "MERGE",
        "profile_ids": ["p2", "p1"],
        "customer_before": "p2",
        "customer_after": "p1",
        "actor": "steward",
        "request_id": "req-1",
        "reason": "tidy",
        "at": events[1]["at"],
    }

    after = await run(env, "--after", events[0]["cursor"])
    assert [e["cursor"] for e in lines(after.stdout)] == [events[1]["cursor"], events[2]["cursor"]]
    typed = await run(env, "--type", "unmerge", "--type", "PROFILE_CREATED,MERGE")
    assert [e["type"] for e in lines(typed.stdout)] == ["PROFILE_CREATED", "MERGE", "UNMERGE"]
    only = await run(env, "--type", "UNMERGE")
    assert [e["type"] for e in lines(only.stdout)] == ["UNMERGE"]

    bad = await run(env, "--after", "yesterday")
    assert bad.returncode == 2 and "--after is not a cursor" in bad.stderr and bad.stdout == ""
    unknown = await run(env, "--type", "MERGED")
    assert unknown.returncode == 2 and "--type: 'MERGED' is not a change type" in unknown.stderr


async def read_line(stream: IO[str]) -> dict[str, Any]:
    line = await asyncio.wait_for(asyncio.to_thread(stream.readline), WAIT_S)
    assert line, "the command ended instead of printing"
    event: dict[str, Any] = json.loads(line)
    return event


async def test_follow_prints_events_committed_after_it_started_until_interrupted(
    driver: AsyncDriver, env: dict[str, str]
) -> None:
    await write(driver, Change(ChangeType.PROFILE_CREATED, ("p1",), None, "p1"))
    with subprocess.Popen(
        command("--follow"), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None and child.stderr is not None
            first = await read_line(child.stdout)
            assert first["type"] == "PROFILE_CREATED"
            await write(driver, Change(ChangeType.MERGE, ("p2", "p1"), "p2", "p1"))  # after the first page was printed
            second = await read_line(child.stdout)
            assert second["type"] == "MERGE" and int(second["cursor"]) > int(first["cursor"])
            assert child.poll() is None  # still following

            child.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(asyncio.to_thread(child.wait), WAIT_S)
            rest, err = child.stdout.read(), child.stderr.read()
            assert code == 0, err
            assert "Traceback" not in err and rest == ""
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
