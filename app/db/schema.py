"""Schema migrations: apply cypher/schema/NNN_name.cypher in order, once each, and record them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from neo4j import AsyncDriver, Query

from app.db.queries import Migration, migrations, query

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchemaState:
    applied: tuple[int, ...]
    pending: tuple[Migration, ...]

    @property
    def current(self) -> bool:
        return not self.pending


async def schema_state(driver: AsyncDriver, database: str, *, timeout_s: float = 5.0) -> SchemaState:
    """The applied and pending migrations; the read is ended by the server too after `timeout_s`."""
    records, _, _ = await driver.execute_query(
        Query(query("applied_migrations"), timeout=timeout_s), database_=database, routing_="r"
    )
    applied = tuple(int(r["version"]) for r in records)
    pending = tuple(m for m in migrations() if m.version not in applied)
    return SchemaState(applied, pending)


async def migrate(driver: AsyncDriver, database: str) -> list[Migration]:
    """Apply every pending migration; returns those applied now (none on a second run)."""
    state = await schema_state(driver, database)
    done: list[Migration] = []
    for migration in state.pending:
        for statement in migration.statements:
            # Schema commands cannot share a transaction with data writes: each runs on its own. No transaction
            # timeout: creating a constraint checks every existing node, which on a large graph takes what it takes,
            # and `idgraph migrate` is an operator's command, watched, not a request someone may give up on.
            await driver.execute_query(statement, database_=database)
        await driver.execute_query(
            query("record_migration"),
            version=migration.version,
            name=migration.name,
            checksum=migration.checksum,
            applied_at=datetime.now(UTC),
            database_=database,
        )
        logger.info("applied schema migration %03d_%s", migration.version, migration.name)
        done.append(migration)
    return done
