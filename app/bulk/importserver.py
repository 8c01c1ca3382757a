"""The database side of `idgraph import` (app/bulk/importing.py): which databases it may load, and the stages
import, start and schema on neo4j-local (app/db/offline.py does the work) or on the docker compose database
(app/db/composeimport.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.config import Settings
from app.db import localserver, offline
from app.db.composeimport import ComposeImport, Runner, run_compose
from app.errors import AppError

if TYPE_CHECKING:
    from app.bulk.importing import ImportReport


class ImportRefused(AppError):
    """`idgraph import` cannot load this database; nothing was changed."""

    code = "INVALID_INPUT"


def refused(message: str) -> ImportRefused:
    return ImportRefused(f"{message}; use `idgraph ingest` instead")


class LoadTarget(Protocol):
    def scratch(self) -> Path: ...

    def load(
        self,
        scratch: Path,
        nodes: Sequence[tuple[str, Path]],
        relationships: Sequence[tuple[str, Path]],
        *,
        multiline: bool,
        report: ImportReport,
    ) -> None: ...


def target_for(settings: Settings, say: Callable[[str], None], *, compose: Runner = run_compose) -> LoadTarget:
    """The database `idgraph import` would load (ImportRefused, one line, when it may not): neo4j-local's, or the
    docker compose one when no neo4j-local of ours runs and compose is the local database (IDGRAPH_LOCAL_DB)."""
    ours = settings.neo4j_is_local and localserver.LocalServer.for_settings(settings).pid() is not None
    if settings.neo4j_is_local and not ours and localserver.use_docker(settings):
        return ComposeTarget.check(settings, say, compose)
    return Target.check(settings, say)


def _check_empty(settings: Settings) -> None:
    found = asyncio.run(offline.contents(settings))
    if found.profile:
        raise refused("the database already holds profiles, and idgraph import loads an empty database only")
    if found.other:
        raise refused(
            f"the database holds {':'.join(found.other)} nodes, which an import would replace; idgraph import "
            "loads an empty database only"
        )
    asyncio.run(offline.check_key(settings, record=False))  # ErasureKeyMismatch before anything is written


def _apply_schema(settings: Settings, report: ImportReport, say: Callable[[str], None]) -> None:
    started = time.monotonic()
    say("applying the schema")
    try:
        asyncio.run(offline.migrated(settings))
        asyncio.run(offline.check_key(settings, record=True))
    except AppError as exc:
        raise AppError(f"{exc.message} (the data was imported; run `idgraph migrate` to finish)") from exc
    report.stages["schema"] = time.monotonic() - started


@dataclass(frozen=True)
class Target:
    """A local neo4j-local this process may stop and start, holding an empty database."""

    settings: Settings
    server: localserver.LocalServer
    say: Callable[[str], None]

    @classmethod
    def check(cls, settings: Settings, say: Callable[[str], None]) -> Target:
        """The database of `settings` when idgraph import may load it; ImportRefused (one line) otherwise."""
        if not settings.neo4j_is_local:
            raise refused(
                f"NEO4J_URI {settings.neo4j_uri} is not on this machine, and idgraph import writes the database's "
                "files itself"
            )
        server = localserver.LocalServer.for_settings(settings)
        if server.pid() is None:
            if offline.answers(settings):
                raise refused(
                    f"the Neo4j answering on {settings.neo4j_uri} was not started by neo4j-local here (no server in "
                    f"{server.pid_file}), so idgraph import cannot stop it"
                )
            say("the database is not running; starting it")
            localserver.start(server, say=say)
        _check_empty(settings)
        return cls(settings, server, say)

    def scratch(self) -> Path:
        """A fresh directory beside the server's home (the same file system, so the swap is a rename)."""
        path = self.server.home.parent / f"{self.server.home.name}-import-{os.getpid()}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def load(
        self,
        scratch: Path,
        nodes: Sequence[tuple[str, Path]],
        relationships: Sequence[tuple[str, Path]],
        *,
        multiline: bool,
        report: ImportReport,
    ) -> None:
        """Stages import, start and schema."""
        database = self.settings.neo4j_database
        started = time.monotonic()
        self.say(f"running neo4j-admin database import ({sum(p.stat().st_size for _, p in nodes):,} bytes of nodes)")
        offline.import_store(scratch / "home", database, nodes, relationships, multiline=multiline, say=self.say)
        report.stages["import"] = time.monotonic() - started
        started = time.monotonic()
        self.say("stopping the database, swapping in the imported one, starting it")
        localserver.stop(self.server)
        swap = offline.swap_in(self.server, scratch / "home", database)
        try:
            localserver.start(self.server, say=self.say)
        except BaseException:
            localserver.stop(self.server)
            swap.restore()
            self.say("the imported database did not start; the old one was put back")
            localserver.start(self.server, say=self.say)
            raise
        swap.discard()
        report.stages["start"] = time.monotonic() - started
        _apply_schema(self.settings, report, self.say)


@dataclass(frozen=True)
class ComposeTarget:
    """The docker compose database, holding an empty database; docker compose stops and starts it."""

    settings: Settings
    steps: ComposeImport
    say: Callable[[str], None]

    @classmethod
    def check(cls, settings: Settings, say: Callable[[str], None], compose: Runner) -> ComposeTarget:
        if not offline.answers(settings):
            say("the database is not running; starting it")
            localserver.database_up(settings, say)
        _check_empty(settings)
        return cls(settings, ComposeImport(settings.neo4j_database, compose), say)

    def scratch(self) -> Path:
        """A fresh directory under var/ (bind-mounted into the importer's container: an absolute path)."""
        path = (self.settings.var_dir / f"import-{os.getpid()}").resolve()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def _start(self) -> None:
        self.steps.start()
        reason = localserver.wait_for_bolt(self.settings, 300.0)
        if reason is not None:
            raise localserver.LocalDatabaseError(f"Neo4j in docker compose did not answer: {reason}")

    def load(
        self,
        scratch: Path,
        nodes: Sequence[tuple[str, Path]],
        relationships: Sequence[tuple[str, Path]],
        *,
        multiline: bool,
        report: ImportReport,
    ) -> None:
        """Stages import (the server keeps serving), start (stop, swap, start; the old store back when the new one
        does not start) and schema."""
        started = time.monotonic()
        self.say("running neo4j-admin database import in the compose service's image")
        self.steps.import_store(scratch / "files", nodes, relationships, multiline=multiline)
        report.stages["import"] = time.monotonic() - started
        started = time.monotonic()
        self.say("stopping the database, swapping in the imported one, starting it")
        self.steps.stop()
        try:
            self.steps.swap_in()
            self._start()
        except BaseException:
            self.steps.stop()
            self.steps.restore()
            self.say("the imported database did not start; the old one was put back")
            self._start()
            raise
        self.steps.discard()
        report.stages["start"] = time.monotonic() - started
        _apply_schema(self.settings, report, self.say)
