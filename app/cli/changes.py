"""`idgraph changes`: the change feed as JSON Lines on stdout, one event per line (the REST feed's shape,
app/jsonshape.py change_json). With --follow it keeps polling, about once a second, and prints new events until
interrupted; Ctrl-C (SIGINT) ends it with exit status 0. Ids only: an event holds no identity or attribute value."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TextIO

from app.cli.delivery import add_delivery_arguments, run_delivery, wants_delivery
from app.cli.engine import engine
from app.config import Settings
from app.domain.changes import parse_cursor
from app.errors import InvalidInput
from app.jsonshape import change_json
from app.services.changes import MAX_LIMIT, ChangeFeed, change_types

POLL_S = 1.0  # --follow: the wait after a page that reached the end of the feed


async def print_feed(
    feed: ChangeFeed,
    out: TextIO,
    *,
    after: str | None,
    types: list[str],
    follow: bool,
    page_size: int = MAX_LIMIT,
    poll_s: float = POLL_S,
) -> str | None:
    """Print every event after `after` (all types when `types` is empty), page by page; with `follow`, then wait and
    print new ones, forever. Returns the cursor to go on from. `types` may hold comma-separated names."""
    wanted = change_types([name for item in types for name in item.split(",") if name.strip()], "--type")
    try:
        parse_cursor(after)
    except InvalidInput:
        raise InvalidInput(
            "--after is not a cursor of this change feed (a cursor is a decimal number it printed)"
        ) from None
    cursor = after
    while True:
        page = await feed.page(after=cursor, limit=page_size, types=wanted)
        for event in page.events:
            out.write(json.dumps(change_json(event), ensure_ascii=False) + "\n")
        out.flush()
        cursor = page.next_cursor
        if len(page.events) < page_size:  # the end of the feed, for now
            if not follow:
                return cursor
            await asyncio.sleep(poll_s)


def _changes(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.repository import Neo4jRepository

    if wants_delivery(args):  # the change webhook's parked batches (app/cli/delivery.py)
        if args.after or args.follow or args.types:
            raise InvalidInput("--parked and --redeliver go without --after, --follow and --type")
        return run_delivery(args, settings)

    async def run() -> None:
        async with engine(settings) as (service, _):
            repo = service.repo
            if not isinstance(repo, Neo4jRepository):  # engine() always builds one
                raise InvalidInput("the change feed needs the Neo4j repository")
            await print_feed(ChangeFeed(repo), sys.stdout, after=args.after, types=args.types or [], follow=args.follow)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:  # --follow is stopped this way: what was printed is whole lines
        return 0
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's last flush does not fail again
        return 0
    return 0


def add_changes_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register `idgraph changes` on the `idgraph` parser's subparsers; returns its parser (for more options)."""
    changes = commands.add_parser(
        "changes",
        help="print the change feed as JSON Lines; --follow keeps printing new events",
        description="Print the change log, oldest first, one JSON object per line: cursor, type, profile_ids, "
        "customer_before, customer_after, actor, request_id, reason, at (ids only, no personal data). "
        "--after CURSOR starts after that event (a cursor printed before); --type keeps only those types (repeat it "
        "or separate them with commas). --follow keeps polling about once a second and prints new events as they "
        "are committed, until interrupted (Ctrl-C exits 0).",
    )
    changes.add_argument("--after", metavar="CURSOR", help="start after this cursor (default: from the start)")
    changes.add_argument("--follow", action="store_true", help="keep printing new events until interrupted")
    changes.add_argument(
        "--type",
        dest="types",
        action="extend",
        nargs="+",
        metavar="T",
        help="only these change types, e.g. MERGE UNMERGE CUSTOMER_ERASED",
    )
    add_delivery_arguments(changes)  # --parked, --redeliver [ID]
    changes.set_defaults(run=_changes)
    return changes
