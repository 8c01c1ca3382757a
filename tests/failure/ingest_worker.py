"""A bulk load that acknowledges each batch: `python -m tests.failure.ingest_worker FILE ACKS [BATCH]`.

It reads JSON Lines profiles, stores them in batches through IdentityService.ingest_batch (one write transaction per
batch), and after each batch commits appends one line to ACKS, flushed and fsynced before the next batch starts:
{"batch": n, "stored": [[source, source_id], ...], "refused": [[source, source_id, code], ...]}. What ACKS lists
was acknowledged by the database; the crash test holds the database to exactly that after a kill -9.

`idgraph ingest` reports only counts (a progress line every few seconds, with batches completing out of order, and a
final summary), which does not say which records were committed; hence this worker. Configuration comes from the
environment as for `idgraph` (NEO4J_URI, IDGRAPH_ERASURE_KEY, ...). Exit status 2 when the database fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from app.config import Settings
from app.db.driver import create_driver
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.domain.model import ProfileInput
from app.domain.validation import profile_input_from_record
from app.errors import AppError
from app.services.identity import IdentityService

logger = logging.getLogger("tests.failure.ingest_worker")


async def load(path: Path, acks: Path, batch_size: int) -> int:
    settings = Settings.from_env()
    driver = create_driver(settings)
    erasure_key = settings.erasure_key()
    repo = Neo4jRepository(
        driver, token_key=token_key(erasure_key), database=settings.neo4j_database, timeout_s=settings.query_timeout_s
    )
    service = IdentityService(repo, settings.strategy(), erasure_key)
    try:
        with path.open(encoding="utf-8") as lines, acks.open("a", encoding="utf-8") as out:
            batch: list[ProfileInput] = []
            number = 0
            for line in lines:
                batch.append(profile_input_from_record(json.loads(line)))
                if len(batch) == batch_size:
                    await store(service, batch, number, out)
                    batch, number = [], number + 1
            if batch:
                await store(service, batch, number, out)
    except AppError as error:
        logger.error("ingest stopped: %s (%s)", error.code, type(error).__name__)
        return 2
    finally:
        await driver.close()
    return 0


async def store(service: IdentityService, batch: list[ProfileInput], number: int, out: TextIO) -> None:
    outcomes = await service.ingest_batch(batch)
    stored = [[item.source, item.source_id] for item, o in zip(batch, outcomes, strict=True) if o.error is None]
    refused = [
        [item.source, item.source_id, o.error.code]
        for item, o in zip(batch, outcomes, strict=True)
        if o.error is not None
    ]
    out.write(json.dumps({"batch": number, "stored": stored, "refused": refused}) + "\n")
    out.flush()
    os.fsync(out.fileno())
    logger.info("batch %d acknowledged: %d stored, %d refused", number, len(stored), len(refused))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("neo4j").setLevel(logging.WARNING)
    batch_size = int(argv[2]) if len(argv) > 2 else 200
    return asyncio.run(load(Path(argv[0]), Path(argv[1]), batch_size))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
