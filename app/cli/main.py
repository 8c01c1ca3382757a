"""The idgraph command line: parse arguments, call the use cases, turn AppErrors into messages and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from app.cli.changes import add_changes_command
from app.cli.commands import add_data_commands
from app.cli.importing import add_import_command
from app.cli.keys import add_key_commands
from app.config import Settings
from app.errors import AppError

logger = logging.getLogger(__name__)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.web.app import create_app

    # The level governs every log line of the process, not only uvicorn's: at "warning" the access log (INFO, one
    # line per request, app/web/observability.py) is off.
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else args.log_level.upper())
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.driver import create_driver, translated_errors
    from app.db.schema import migrate

    async def run() -> int:
        driver = create_driver(settings)
        try:
            async with translated_errors(120.0):
                applied = await migrate(driver, settings.neo4j_database)
        finally:
            await driver.close()
        if applied:
            for m in applied:
                print(f"applied {m.version:03d}_{m.name}")
        else:
            print("schema is current; nothing to apply")
        return 0

    return asyncio.run(run())


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from app.db import localserver

    if args.action == "up":
        print(localserver.database_up(settings))
        return 0
    if args.action == "down":
        print(localserver.database_down(settings))
        return 0
    up, message = localserver.database_status(settings)
    print(message)
    return 0 if up else 1


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth import SCOPES, add_token

    scopes = args.scopes.split(",") if args.scopes else list(SCOPES)
    token = add_token(settings.tokens_file, args.name, scopes)
    if args.quiet:
        print(token)
    else:
        print(f"token {args.name!r} with scopes {', '.join(scopes)} (its hash is stored in {settings.tokens_file}):")
        print(f"  {token}")
        print("use it as the header   Authorization: Bearer <token>")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idgraph",
        description="Deterministic customer identity resolution on Neo4j. Configuration comes from the "
        "environment (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE, IDGRAPH_STRATEGY, ...).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API", description="Serve the HTTP API with uvicorn.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the least severe log lines written, uvicorn's and idgraph's alike; the access log is INFO (default info)",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser(
        "migrate", help="apply the schema", description="Apply pending cypher/schema migrations, in order, once each."
    )
    migrate.set_defaults(run=_migrate)

    db = commands.add_parser(
        "db",
        help="start, stop or check the local Neo4j",
        description="up: start the local Neo4j (docker compose when a Docker engine answers, else neo4j-local) "
        "and wait until Bolt answers; when NEO4J_URI points to another machine, only check that it answers. "
        "down: stop it. status: report it (exit 1 when down). All are idempotent.",
    )
    db.add_argument("action", choices=["up", "down", "status"])
    db.set_defaults(run=_db)

    token = commands.add_parser(
        "token",
        help="create an API token",
        description="Create a bearer token, store its SHA-256 in IDGRAPH_TOKENS_FILE and print the token once. "
        "A token of the same name is replaced.",
    )
    token.add_argument("name", help="who the token is for (shown as the actor of merges and erasures)")
    token.add_argument(
        "--scopes",
        default="",
        help="comma-separated; default all: identity:read,identity:write,identity:erase,identity:audit",
    )
    token.add_argument("--quiet", action="store_true", help="print only the token")
    token.set_defaults(run=_token)

    add_data_commands(commands)
    add_import_command(commands)
    add_key_commands(commands)
    add_changes_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("neo4j").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        code: int = args.run(args, settings)
        return code
    except AppError as exc:
        print(f"idgraph {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"idgraph {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
