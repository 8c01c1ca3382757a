"""`idgraph import`: a first load into an empty local database through Neo4j's offline importer."""

from __future__ import annotations

import argparse
import sys

from app.cli.engine import bulk_inputs, positive
from app.config import Settings
from app.errors import InvalidInput


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from app.bulk import importing

    paths, mapping, rejects = bulk_inputs(args, settings)
    try:
        report = importing.run(
            settings, paths, mapping=mapping, rejects_path=rejects, workers=args.workers, stream=sys.stderr
        )
    except OSError as exc:  # an input, the rejects file or a scratch file could not be read or written
        raise InvalidInput(f"{exc.filename or 'file'}: {exc.strerror or exc}") from exc
    for line in importing.import_summary(report):
        print(line)
    return 0


def add_import_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `idgraph import` on the `idgraph` parser's subparsers."""
    command = commands.add_parser(
        "import",
        help="first load of an empty local database through Neo4j's offline importer",
        description="Load profiles from JSON Lines or CSV files into an EMPTY local database (neo4j-local) through "
        "Neo4j's offline importer (neo4j-admin database import), many times faster than `idgraph ingest`. The "
        "inputs, validation, normalization and rejects file are ingest's, and so is the graph. The store is "
        "written beside the running database, then the database is stopped, the new store swapped in, the "
        "database started again and the schema applied. A failed or interrupted import leaves the old database "
        "as it was. Refused (nothing changed) when the database holds profiles, when NEO4J_URI is not on this "
        "machine, or when the server is not a neo4j-local that idgraph started: use `idgraph ingest` then. "
        "Exit status 0 when every line was stored or rejected, 2 when the import was refused or failed.",
    )
    command.add_argument("files", nargs="+", metavar="FILE")
    command.add_argument(
        "--mapping", metavar="NAME|PATH", help="CSV field mapping: salesforce, dynamics, or a TOML mapping file"
    )
    command.add_argument("--rejects", metavar="PATH", help="rejects file (default: <first file>.rejects.jsonl)")
    command.add_argument(
        "--workers", type=positive, default=2, metavar="N", help="worker processes that normalize records (2)"
    )
    command.set_defaults(run=_import)
