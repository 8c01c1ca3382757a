"""A first load into the docker compose database, for `idgraph import` (app/bulk/importserver.py).

The same road as neo4j-local's (app/db/offline.py), run inside the compose service's image with `docker compose
run`, on the service's own data volume:

1. import: `neo4j-admin database import full` writes the new store under /data/idgraph-import (a data directory of
   its own, set with --additional-config) while the server keeps serving the old database from /data/databases;
2. swap: the server is stopped, the old store directories are moved aside to /data/idgraph-before-import and the
   imported ones moved in (renames within the volume), owned by the image's neo4j user;
3. start: the service is started again; when it does not answer, it is stopped, the old store moved back and started.

So an import that fails or is interrupted before the swap leaves the old database as it was and serving. The files to
load are bind-mounted read-only at /idgraph-import.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.config import REPO_ROOT
from app.db.localserver import LocalDatabaseError

SERVICE = "neo4j"  # the database service of docker-compose.yml
FILES = "/idgraph-import"  # where the import files are mounted in the importer's container
IMPORT_DATA = "/data/idgraph-import"  # the importer's data directory, in the service's data volume
ASIDE = "/data/idgraph-before-import"  # the old store while the imported one is tried

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_compose(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """`docker compose ARGS` in the repository (where docker-compose.yml is), output captured."""
    return subprocess.run(
        ["docker", "compose", *args], cwd=REPO_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def _in_container(files: Path, path: Path) -> str:
    """The path the importer sees for a file under `files`."""
    try:
        return f"{FILES}/{path.relative_to(files).as_posix()}"
    except ValueError:
        raise LocalDatabaseError(f"{path} is not under the import directory {files}") from None


def _store_dirs(data: str, database: str) -> tuple[str, str]:
    return f"{data}/databases/{database}", f"{data}/transactions/{database}"


def _move_script(pairs: Sequence[tuple[str, str]]) -> str:
    """A shell script moving each existing `src` to `dst` (parents created), then giving the moved trees to the
    image's neo4j user: the importer may have run as root, and the server runs as neo4j."""
    lines = ["set -e"]
    for src, dst in pairs:
        s, d = shlex.quote(src), shlex.quote(dst)
        lines.append(f"mkdir -p $(dirname {d}); if [ -e {s} ]; then rm -rf {d}; mv {s} {d}; fi")
        lines.append(f"if [ -e {d} ]; then chown -R neo4j:neo4j {d}; fi")
    return "\n".join(lines)


@dataclass(frozen=True)
class ComposeImport:
    """The three steps on the compose service's volume; `run` runs `docker compose` (tests give a fake)."""

    database: str
    run: Runner = run_compose

    def _compose(self, *args: str, what: str) -> None:
        done = self.run(list(args))
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise LocalDatabaseError(f"{what} failed (docker compose exited with status {done.returncode}):\n{tail}")

    def _shell(self, script: str, *, what: str) -> None:
        self._compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", SERVICE, "-c", script, what=what)

    def import_store(
        self,
        files: Path,
        nodes: Sequence[tuple[str, Path]],
        relationships: Sequence[tuple[str, Path]],
        *,
        multiline: bool,
    ) -> None:
        """Step 1: write the new store under IMPORT_DATA; the serving database is not touched."""
        (files / "neo4j.conf").write_text(f"server.directories.data={IMPORT_DATA}\n")
        self._compose(
            "run", "--rm", "--no-deps", "-T", "-v", f"{files.resolve()}:{FILES}:ro", SERVICE,
            "neo4j-admin", "database", "import", "full", self.database, "--overwrite-destination=true",
            "--id-type=integer", f"--multiline-fields={str(multiline).lower()}",
            f"--additional-config={FILES}/neo4j.conf", "--report-file=/tmp/idgraph-import.report",
            *(f"--nodes={label}={_in_container(files, path)}" for label, path in nodes),
            *(f"--relationships={kind}={_in_container(files, path)}" for kind, path in relationships),
            what="neo4j-admin database import in the compose service's image; the old database was left as it was",
        )  # fmt: skip

    def swap_in(self) -> None:
        """Step 2 (the service stopped): the old store aside, the imported one in."""
        live = _store_dirs("/data", self.database)
        self._shell(
            _move_script(
                [
                    *zip(live, _store_dirs(ASIDE, self.database), strict=True),
                    *zip(_store_dirs(IMPORT_DATA, self.database), live, strict=True),
                ]
            ),
            what="swapping the imported store in",
        )

    def restore(self) -> None:
        """Put the old store back (the service stopped), replacing the imported one; a directory the swap did not
        move aside is left where it is."""
        live = _store_dirs("/data", self.database)
        self._shell(
            _move_script(list(zip(_store_dirs(ASIDE, self.database), live, strict=True))),
            what="putting the old store back",
        )

    def discard(self) -> None:
        """After a good start: delete the old store and what is left of the import's data directory."""
        self._shell(f"rm -rf {shlex.quote(ASIDE)} {shlex.quote(IMPORT_DATA)}", what="deleting the old store")

    def stop(self) -> None:
        self._compose("stop", SERVICE, what="stopping the compose database")

    def start(self) -> None:
        self._compose("start", SERVICE, what="starting the compose database")
