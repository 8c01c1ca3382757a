"""The database side of `idgraph import` (app/bulk/importing.py): which databases it may load, and the stages
import, start and schema on neo4j-local (app/db/offline.py does the work)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings
from app.db import localserver, offline
from app.errors import AppError

if TYPE_CHECKING:
    from app.bulk.importing import ImportReport


class ImportRefused(AppError):
    """`idgraph import` cannot load this database; nothing was changed."""

    code = "INVALID_INPUT"


def refused(message: str) -> ImportRefused:
    return ImportRefused(f"{message}; use `idgraph ingest` instead")


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
            if localserver.use_docker(settings):
                raise refused("the docker compose database is not supported yet (neo4j-local only)")
            if offline.answers(settings):
                raise refused(
                    f"the Neo4j answering on {settings.neo4j_uri} was not started by neo4j-local here (no server in "
                    f"{server.pid_file}), so idgraph import cannot stop it"
                )
            say("the database is not running; starting it")
            localserver.start(server, say=say)
        found = asyncio.run(offline.contents(settings))
        if found.profile:
            raise refused("the database already holds profiles, and idgraph import loads an empty database only")
        if found.other:
            raise refused(
                f"the database holds {':'.join(found.other)} nodes, which an import would replace; idgraph import "
                "loads an empty database only"
            )
        asyncio.run(offline.check_key(settings, record=False))  # ErasureKeyMismatch before anything is written
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
        started = time.monotonic()
        self.say("applying the schema")
        try:
            asyncio.run(offline.migrated(self.settings))
            asyncio.run(offline.check_key(self.settings, record=True))
        except AppError as exc:
            raise AppError(f"{exc.message} (the data was imported; run `idgraph migrate` to finish)") from exc
        report.stages["schema"] = time.monotonic() - started
