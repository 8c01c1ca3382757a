"""`idgraph import` (issue 17): the offline importer's road leaves the graph `idgraph ingest` leaves, refuses what it
cannot load, and an import that fails leaves the old database as it was and serving.

The import stops and starts its server, so it runs on servers of this module's own (tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, LiteralString

import pytest

from app.cli.main import main
from app.config import Settings
from app.db import localserver, offline
from app.db.driver import create_driver
from bench.bulkload import compare_digests, digest
from bench.datagen import records, sharing
from tests.conftest import _fail_or_skip, free_port
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.neo4j

IMPORT_BOUND_S = 400.0
LIMIT = 3  # max_profiles_per_identity of the test strategy: households and hubs go over it

STRATEGY = f"""
name = "import-test"
default_region = "US"

[[attributes]]
name = "phone_number"
kind = "primary"
normalization = "E164"

[[attributes]]
name = "email_address"
kind = "primary"
normalization = "Lowercase"

[[attributes]]
name = "account_id"
kind = "secondary"
normalization = "None"
max_per_customer = 1

[protections]
blocked_values = ["+10000000000", "test@example.com"]
max_profiles_per_identity = {LIMIT}

[routing]
fallback_skill = "General_Support"
"""


def _lines() -> Iterator[str]:
    """Generated records (phone spellings, e-mail case and whitespace, households, switchboards, junk values), hubs
    over the fan-out limit, blocked values, repeated source records, and lines that cannot be used."""
    for n, record in enumerate([*records(1200, seed=17), *sharing(LIMIT + 4, "+1 800 555 0177", tag="hub")]):
        yield json.dumps(record)
        if n % 151 == 0:
            yield '{"source": "crm", "source_id": '  # not JSON
        if n % 233 == 0:
            yield json.dumps({"source": "crm", "source_id": f"bad-{n}", "identities": "+14155550100"})
        if n % 307 == 0:
            yield ""  # blank lines are skipped
    phone = {"key": "phone_number"}
    email = {"key": "email_address"}
    yield from map(
        json.dumps,
        [
            {"source": "crm", "source_id": "B-1", "identities": [{**phone, "value": "+1 000 000 0000"}]},  # blocked
            {"source": "ivr", "source_id": "B-2", "identities": [{**email, "value": " TEST@example.com "}]},
            {
                "source": "crm",
                "source_id": "B-3",
                "identities": [{**phone, "value": "(000) 000-0000"}, {**email, "value": "b3@example.org"}],
            },
            # one source record three times: the last attributes win (null removes one), the identities unite
            {
                "source": "crm",
                "source_id": "R-1",
                "identities": [{**phone, "value": "(415) 555-0142"}],
                "attributes": {"tier": "Gold", "score": 3, "vip": True},
            },
            {
                "source": "crm",
                "source_id": "R-1 ",
                "identities": [{**email, "value": " R1@Example.COM"}, {**phone, "value": "415.555.0142"}],
                "attributes": {"tier": "Platinum", "score": None, "note": 'two\nlines, "quoted"', "empty": ""},
            },
            {
                "source": "crm",
                "source_id": "R-1",
                "identities": [{**phone, "value": "415-555-0143"}],
                "attributes": {"ratio": 0.25},
            },
            {
                "source": "crm",
                "profile_id": "6f1c3c5e-0000-4000-8000-000000000001",
                "identities": [{**phone, "value": "4155550142"}],
            },  # NOT_FOUND: the database is empty
            {"source": "crm", "source_id": "X-1", "identities": [{**phone, "value": "12"}]},  # NOTHING_USABLE
            {"source": "web chat!", "source_id": "X-2", "identities": [{**phone, "value": "4155550144"}]},
            {"source": "webchat", "identities": [{**email, "value": "no.id@example.com"}]},  # no source_id
        ],
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The strategy file and the input files: JSON Lines and a Salesforce CSV export."""
    directory = tmp_path_factory.mktemp("import-inputs")
    strategy = directory / "strategy.toml"
    strategy.write_text(STRATEGY)
    jsonl = directory / "contacts.jsonl"
    jsonl.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    export = directory / "salesforce.csv"
    with export.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Contact.Id", "Contact.Email", "Contact.Phone", "Contact.MobilePhone", "Account.Id", "Tier"])
        for n in range(40):
            writer.writerow([f"003{n:05d}", f" Person.{n}@Example.com", f"(415) 555-{n % 7:04d}", "", "", "Gold"])
        writer.writerow(["003BAD", "x", "y", "", "", "", "one cell too many"])
        writer.writerow(["00300001", "", "+1 415 555 0001", "", "ACC-1", ""])  # a repeated record
    return strategy, [jsonl, export]


def _start(home: Path) -> localserver.LocalServer:
    server = localserver.LocalServer(home=home / "var" / "neo4j", port=free_port())
    try:
        localserver.start(server, say=lambda message: None)
    except localserver.LocalDatabaseError as exc:
        _fail_or_skip(exc.message)
    return server


@pytest.fixture(scope="module")
def ingest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localserver.LocalServer]:
    """A second server of this module's own, loaded through `idgraph ingest`."""
    server = _start(tmp_path_factory.mktemp("ingest-db"))
    try:
        yield server
    finally:
        localserver.stop(server)


def _cli(server: localserver.LocalServer, strategy: Path) -> Cli:
    cli = Cli.for_server(server)
    cli.env["IDGRAPH_STRATEGY"] = str(strategy)
    return cli


def _settings(server: localserver.LocalServer) -> Settings:
    return Settings.from_env({"NEO4J_URI": server.uri})


async def _query(server: localserver.LocalServer, text: LiteralString) -> list[dict[str, Any]]:
    driver = create_driver(_settings(server))
    try:
        found, _, _ = await driver.execute_query(text)
        return [dict(r) for r in found]
    finally:
        await driver.close()


def _partition(cli: Cli) -> list[list[tuple[str, str]]]:
    """The export's customers, each as the sorted (source, source_id) of its profiles."""
    done = cli("export", timeout=120.0)
    assert done.returncode == 0, done.stderr
    customers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in done.stdout.splitlines():
        row = json.loads(line)
        customers[row["customer_id"]].append((row["source"], row["source_id"] or ""))
    return sorted(sorted(profiles) for profiles in customers.values())


def _environment(monkeypatch: pytest.MonkeyPatch, server: localserver.LocalServer, strategy: Path) -> None:
    """This process's environment as `_cli(server, strategy)`'s, for an `idgraph` run in this process."""
    env = _cli(server, strategy).env
    for name in list(os.environ):
        if name.startswith(("NEO4J_", "IDGRAPH_")) and name not in env:
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(("NEO4J_", "IDGRAPH_")):
            monkeypatch.setenv(name, value)


def _counts(summary: str) -> list[str]:
    """A summary's counts: stored, created, updated, rejected lines and left-out values by reason, the warning."""
    lines = summary.splitlines()[1:]
    return [re.sub(r"\(lines in .*\)", "", line) for line in lines if not line.startswith(("  identities", "  stages"))]


def _rejects(path: Path) -> list[tuple[str, int, str]]:
    return [(Path(r["file"]).name, r["line"], r["reason"]) for r in map(json.loads, path.read_text().splitlines())]


def test_an_import_that_fails_leaves_the_old_database_serving(
    own_server: localserver.LocalServer,
    inputs: tuple[Path, list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """neo4j-admin fails (a flag it does not know): the server was never stopped, its database is as it was."""
    strategy, files = inputs
    assert _cli(own_server, strategy)("migrate").returncode == 0
    before = asyncio.run(_query(own_server, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props"))
    pid = own_server.pid()
    _environment(monkeypatch, own_server, strategy)
    real = offline.admin_command
    monkeypatch.setattr(offline, "admin_command", lambda *a, **k: [*real(*a, **k), "--no-such-flag"])

    code = main(["import", *map(str, files), "--rejects", str(tmp_path / "rejects.jsonl")])

    assert code == 2
    assert own_server.pid() == pid  # never stopped
    assert asyncio.run(_query(own_server, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")) == before
    assert not list(own_server.home.parent.glob("neo4j-import-*"))  # the scratch home is gone


def test_an_import_whose_database_does_not_start_puts_the_old_one_back(
    own_server: localserver.LocalServer,
    inputs: tuple[Path, list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The imported store is in place but the server does not start on it: the old store is moved back."""
    strategy, files = inputs
    _environment(monkeypatch, own_server, strategy)
    assert _cli(own_server, strategy)("migrate").returncode == 0
    before = asyncio.run(_query(own_server, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props"))
    real = localserver.start
    calls: list[int] = []

    def start_failing_once(server: localserver.LocalServer, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise localserver.LocalDatabaseError("neo4j-local exited with status 1 before it was ready")
        return real(server, **kwargs)

    monkeypatch.setattr(localserver, "start", start_failing_once)

    code = main(["import", str(files[0]), "--rejects", str(tmp_path / "rejects.jsonl")])

    assert code == 2 and len(calls) == 2
    assert own_server.pid() is not None
    assert asyncio.run(_query(own_server, "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")) == before
    assert not list(own_server.home.parent.glob("neo4j-before-import"))


def test_import_and_ingest_leave_the_same_graph(
    own_server: localserver.LocalServer,
    ingest_server: localserver.LocalServer,
    inputs: tuple[Path, list[Path]],
    tmp_path: Path,
) -> None:
    strategy, files = inputs
    importing, ingesting = _cli(own_server, strategy), _cli(ingest_server, strategy)
    imported = importing(
        "import",
        *map(str, files),
        "--mapping",
        "salesforce",
        "--rejects",
        str(tmp_path / "import.rejects.jsonl"),
        timeout=IMPORT_BOUND_S,
    )
    assert imported.returncode == 0, imported.stderr
    assert "import done:" in imported.stdout and "stages: normalize" in imported.stdout, imported.stdout
    assert ingesting("migrate").returncode == 0
    ingested = ingesting(
        "ingest",
        *map(str, files),
        "--mapping",
        "salesforce",
        "--rejects",
        str(tmp_path / "ingest.rejects.jsonl"),
        timeout=IMPORT_BOUND_S,
    )
    assert ingested.returncode == 0, ingested.stderr
    # The same counts in both summaries: records read, stored, created and updated, rejected by reason.
    assert _counts(imported.stdout) == _counts(ingested.stdout)

    # The same customers.
    assert _partition(importing) == _partition(ingesting)

    # The same profiles, identity nodes and edges per (source, source_id), property for property (ids and times:
    # only their presence), and as many nodes and edges of each kind.
    async def digests() -> tuple[dict[str, Any], dict[str, Any]]:
        graphs = []
        for server in (ingest_server, own_server):
            driver = create_driver(_settings(server))
            try:
                graphs.append(await digest(driver))
            finally:
                await driver.close()
        return graphs[0], graphs[1]

    through_ingest, through_import = asyncio.run(digests())
    assert through_import["count"][("OBSERVED",)] > 0 and through_import["count"][("HAS_IDENTITY",)] > 0
    assert any(dict(props).get("saturated") for props in through_import["identity"].values())
    assert any(dict(props).get("blocked") for props in through_import["identity"].values())
    compare_digests(through_ingest, through_import, "idgraph import")

    # The same rejects.
    rejects = _rejects(tmp_path / "import.rejects.jsonl")
    assert rejects == _rejects(tmp_path / "ingest.rejects.jsonl")
    assert {reason for _, _, reason in rejects} >= {"INVALID_JSON", "INVALID_RECORD", "INVALID_CSV", "NOT_FOUND"}

    # The schema is there, and so is the erasure key's fingerprint.
    assert importing("migrate").stdout.strip() == "schema is current; nothing to apply"
    assert asyncio.run(_query(own_server, "MATCH (k:ErasureKey) RETURN k.fingerprint AS f"))[0]["f"]


def test_import_refuses_a_database_that_holds_a_profile(
    ingest_server: localserver.LocalServer, inputs: tuple[Path, list[Path]]
) -> None:
    strategy, files = inputs
    cli = _cli(ingest_server, strategy)
    assert cli("migrate").returncode == 0
    one = files[0].with_name("one.jsonl")
    one.write_text(json.dumps({"source": "crm", "source_id": "one", "attributes": {"tier": "Gold"}}) + "\n")
    assert cli("ingest", str(one)).returncode == 0
    pid = ingest_server.pid()

    done = cli("import", str(one))

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "already holds profiles" in done.stderr and "idgraph ingest" in done.stderr
    assert ingest_server.pid() == pid


def test_import_refuses_a_remote_database(inputs: tuple[Path, list[Path]], tmp_path: Path) -> None:
    strategy, files = inputs
    cli = Cli("bolt://neo4j.example.com:7687", tmp_path / "var")
    cli.env["IDGRAPH_STRATEGY"] = str(strategy)

    done = cli("import", str(files[0]))

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "not on this machine" in done.stderr and "idgraph ingest" in done.stderr
