"""`idgraph changes --parked` and `idgraph changes --redeliver [ID]`: the change webhook's parked batches.

--parked prints one JSON line per parked batch, in cursor order: its id (the cursor range "FIRST-LAST"), the range,
how many events, the attempts, the last error class and when it was parked. --redeliver sends every parked batch
(or the one whose id is given) once more to IDGRAPH_CHANGE_WEBHOOK_URL, signed with IDGRAPH_CHANGE_WEBHOOK_SECRET,
and prints one JSON line per batch: delivered (removed from the parked ones) or not (one more attempt counted).
Exit status 0 when every batch was delivered, 1 when one was not, 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime

from app.config import Settings
from app.domain.delivery import ParkedBatch, batch_id, parse_batch_id
from app.errors import InvalidInput, NotFound
from app.jsonshape import Json, rfc3339

ALL = "all"


def add_delivery_arguments(parser: argparse.ArgumentParser) -> None:
    """The two flags, on the `changes` command's parser."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--parked", action="store_true", help="list the change webhook's parked batches as JSON Lines, then exit"
    )
    group.add_argument(
        "--redeliver",
        nargs="?",
        const=ALL,
        metavar="ID",
        help="send the parked batches (or the one with this id, FIRST-LAST) to the change webhook once more",
    )


def wants_delivery(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "parked", False) or getattr(args, "redeliver", None))


def run_delivery(args: argparse.Namespace, settings: Settings) -> int:
    """--parked or --redeliver; the other `changes` options do not go with them."""
    if args.redeliver is not None:
        if settings.change_webhook_url is None:
            raise InvalidInput("--redeliver sends to IDGRAPH_CHANGE_WEBHOOK_URL: set it (and its secret)")
        selected = None if args.redeliver == ALL else batch_id(*parse_batch_id(args.redeliver))
        return asyncio.run(_redeliver(settings, selected))
    return asyncio.run(_list(settings))


def parked_json(batch: ParkedBatch) -> Json:
    return {
        "id": batch.id,
        "first_cursor": str(batch.first_seq),
        "last_cursor": str(batch.last_seq),
        "events": batch.events,
        "attempts": batch.attempts,
        "last_error": batch.last_error,
        "parked_at": rfc3339(batch.parked_at),
        "retried_at": None if batch.retried_at is None else rfc3339(batch.retried_at),
    }


def _line(value: Json) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


async def _list(settings: Settings) -> int:
    from app.db.delivery import DeliveryRepository
    from app.db.driver import create_driver

    driver = create_driver(settings)
    try:
        store = DeliveryRepository(driver, database=settings.neo4j_database, timeout_s=settings.query_timeout_s)
        for batch in await store.parked():
            _line(parked_json(batch))
    finally:
        await driver.close()
    return 0


async def _redeliver(settings: Settings, selected: str | None) -> int:
    from app.bulk.delivery import redeliver
    from app.bulk.endpoint import WebhookEndpoint
    from app.db.changes import ChangeLogRepository
    from app.db.delivery import DeliveryRepository
    from app.db.driver import create_driver

    delivery = settings.change_delivery()
    assert delivery is not None
    driver = create_driver(settings)
    try:
        database, timeout_s = settings.neo4j_database, settings.query_timeout_s
        store = DeliveryRepository(driver, database=database, timeout_s=timeout_s)
        # token_key signs consistency tokens, which these reads neither take nor give: any key will do.
        log = ChangeLogRepository(driver, token_key=b"change-delivery", database=database, timeout_s=timeout_s)
        batches = await store.parked(selected)
        if selected is not None and not batches:
            raise NotFound(f"no parked batch {selected} (see idgraph changes --parked)")
        endpoint = WebhookEndpoint(delivery.url, delivery.secret, timeout_s=delivery.timeout_s)
        done = await redeliver(store, log, endpoint, batches, now=datetime.now(UTC))
    finally:
        await driver.close()
    for outcome in done:
        _line(
            {"id": outcome.batch.id, "delivered": outcome.delivered, "events": outcome.events, "error": outcome.error}
        )
    return 0 if all(o.delivered for o in done) else 1
