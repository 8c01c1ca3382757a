"""A first load through Neo4j's offline importer, for `idgraph import` (app/bulk/importing.py).

The importer (`neo4j-admin database import full`, from neo4j-local's own jars) writes a store into a scratch
home next to the server's, while the server keeps running and serving the old database. Only when that succeeded
is the server stopped, the old store directories moved aside, the new ones moved in and the server started again;
when the start fails the old store is moved back. So an import that fails or is interrupted before the swap leaves
the old database as it was and serving, and one that fails at the start puts it back.

neo4j-local keeps a database's store in <home>/data/databases/<name> and its transaction logs in
<home>/data/transactions/<name> (the layout of Neo4j's DatabaseManagementServiceBuilder): those two directories
are swapped. The system database, which knows the database by name, is left alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import LiteralString

from app.config import Settings
from app.db import localserver
from app.db.driver import create_driver, ping
from app.db.keystore import KeyStore
from app.db.localserver import LocalDatabaseError, LocalServer
from app.db.schema import migrate
from app.erasure_key import ErasureKey

# What a database may hold and still count as empty: the schema ledger, the erasure key's fingerprint (recorded
# again after the import) and the retention lease. Anything else (profiles, identities, the suppression list,
# erasure receipts, webhook events, retention runs) would be lost by replacing the store.
_ANY_PROFILE: LiteralString = "MATCH (p:Profile) RETURN p.id AS id LIMIT 1"
_ANY_OTHER: LiteralString = (
    "MATCH (n) WHERE NOT (n:SchemaMigration OR n:ErasureKey OR n:RetentionLease) RETURN labels(n) AS labels LIMIT 1"
)


@dataclass(frozen=True)
class Contents:
    """What keeps a database from being an empty one: a profile, or another node (its labels)."""

    profile: bool
    other: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.profile and not self.other


async def contents(settings: Settings) -> Contents:
    driver = create_driver(settings)
    try:
        found, _, _ = await driver.execute_query(_ANY_PROFILE, database_=settings.neo4j_database, routing_="r")
        if found:
            return Contents(profile=True)
        other, _, _ = await driver.execute_query(_ANY_OTHER, database_=settings.neo4j_database, routing_="r")
        return Contents(profile=False, other=tuple(other[0]["labels"]) if other else ())
    finally:
        await driver.close()


async def check_key(settings: Settings, *, record: bool) -> None:
    """The erasure key check of the writing commands (app/cli/engine.py): ErasureKeyMismatch when the database holds
    another key's fingerprint; with `record`, the fingerprint is recorded when the database holds none (as after an
    import: the imported store holds no key node)."""
    driver = create_driver(settings)
    try:
        await KeyStore(driver, database=settings.neo4j_database).check(
            ErasureKey(settings.erasure_key()), record=record
        )
    finally:
        await driver.close()


async def migrated(settings: Settings) -> int:
    """Apply the schema migrations (an imported store has none); returns how many were applied."""
    driver = create_driver(settings)
    try:
        return len(await migrate(driver, settings.neo4j_database))
    finally:
        await driver.close()


def answers(settings: Settings) -> bool:
    return asyncio.run(ping(settings)) is None


def admin_command(
    database: str,
    nodes: Sequence[tuple[str, Path]],
    relationships: Sequence[tuple[str, Path]],
    *,
    report: Path,
    heap: str,
    multiline: bool,
) -> list[str]:
    """The neo4j-admin command line. --overwrite-destination is safe: it only ever targets a scratch home."""
    java = shutil.which("java") or "java"
    return [
        java, f"-Xmx{heap}", *localserver.JAVA_FLAGS, "-cp", f"{localserver.LIB}/*", "org.neo4j.cli.AdminTool",
        "database", "import", "full", database, "--overwrite-destination=true", "--id-type=integer",
        f"--multiline-fields={str(multiline).lower()}", f"--report-file={report}",
        *(f"--nodes={label}={path}" for label, path in nodes),
        *(f"--relationships={kind}={path}" for kind, path in relationships),
    ]  # fmt: skip


def import_store(
    scratch: Path,
    database: str,
    nodes: Sequence[tuple[str, Path]],
    relationships: Sequence[tuple[str, Path]],
    *,
    heap: str = "1g",
    multiline: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Write the store of `database` into the scratch home `scratch` (created; its log is scratch/import.log)."""
    localserver.ensure_built(say)
    conf = scratch / "conf"  # the importer reads $NEO4J_CONF/neo4j.conf; neo4j-local needs no settings there
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "neo4j.conf").touch()
    log_path = scratch / "import.log"
    command = admin_command(
        database, nodes, relationships, report=scratch / "import.report", heap=heap, multiline=multiline
    )
    env = dict(os.environ, NEO4J_HOME=str(scratch), NEO4J_CONF=str(conf))
    with log_path.open("ab") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    if done.returncode != 0:
        raise LocalDatabaseError(
            f"neo4j-admin database import exited with status {done.returncode}; the old database was left as it was; "
            f"last lines of {log_path}:\n" + localserver.log_tail(log_path, 15)
        )
    if not _store_dirs(scratch, database)[0].is_dir():
        raise LocalDatabaseError(f"neo4j-admin wrote no store into {scratch}; the old database was left as it was")


def _store_dirs(home: Path, database: str) -> tuple[Path, Path]:
    return home / "data" / "databases" / database, home / "data" / "transactions" / database


@dataclass
class Swap:
    """The store directories moved by swap_in, to put back (restore) or to delete (discard)."""

    aside: Path
    moved: list[tuple[Path, Path, bool]] = field(default_factory=list)  # (live, aside, the imported one moved in)

    def restore(self) -> None:
        """Put the old store back (the server must be stopped); what was moved in is deleted."""
        for live, old, moved_in in reversed(self.moved):
            if moved_in:
                shutil.rmtree(live, ignore_errors=True)
            if old.exists():
                old.rename(live)
        self.moved.clear()
        shutil.rmtree(self.aside, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.aside, ignore_errors=True)


def swap_in(server: LocalServer, scratch: Path, database: str) -> Swap:
    """Move the stopped server's store of `database` aside and the scratch home's in (renames, same file system)."""
    if server.pid() is not None:
        raise LocalDatabaseError(f"neo4j-local on {server.home} is running; stop it before swapping its store")
    aside = server.home.parent / f"{server.home.name}-before-import"
    shutil.rmtree(aside, ignore_errors=True)
    swap = Swap(aside)
    try:
        for live, old, new in zip(
            _store_dirs(server.home, database),
            _store_dirs(aside, database),
            _store_dirs(scratch, database),
            strict=True,
        ):
            old.parent.mkdir(parents=True, exist_ok=True)
            live.parent.mkdir(parents=True, exist_ok=True)
            swap.moved.append((live, old, False))
            if live.exists():
                live.rename(old)
            if new.exists():
                swap.moved[-1] = (live, old, True)
                new.rename(live)
    except BaseException:
        swap.restore()
        raise
    return swap
