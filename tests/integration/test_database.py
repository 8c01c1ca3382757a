"""The test database is a real Neo4j 5.26 and the schema protects the identity graph."""

from __future__ import annotations

import asyncio
from typing import LiteralString

import pytest
from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ConstraintError

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.queries import migrations
from app.db.schema import migrate, schema_state

pytestmark = pytest.mark.neo4j


async def test_database_is_a_real_neo4j_5_26(driver: AsyncDriver, settings: Settings) -> None:
    records, _, _ = await driver.execute_query(
        "CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition",
        database_=settings.neo4j_database,
    )
    assert records[0]["name"] == "Neo4j Kernel"
    assert records[0]["versions"][0].startswith("5.26.")
    assert records[0]["edition"] in {"community", "enterprise"}


async def test_migrate_twice_changes_nothing(driver: AsyncDriver, settings: Settings) -> None:
    assert await migrate(driver, settings.neo4j_database) == []
    state = await schema_state(driver, settings.neo4j_database)
    assert state.current
    assert state.applied == tuple(m.version for m in migrations())


async def test_schema_has_the_named_constraints(driver: AsyncDriver, settings: Settings) -> None:
    records, _, _ = await driver.execute_query(
        "SHOW CONSTRAINTS YIELD name RETURN name", database_=settings.neo4j_database
    )
    names = {r["name"] for r in records}
    assert {"profile_id", "profile_source_record", "identity_key_value", "suppression_hash"} <= names


CONCURRENT_CREATE = "idgraph-test-concurrent-create"
BLOCKED_WAIT_S = 30.0


async def _until_blocked(driver: AsyncDriver, database: str, marker: str, waiter: asyncio.Task[str]) -> None:
    """Until the server lists a transaction running the statement marked `marker` as blocked on a lock; fails at
    once when `waiter` finishes instead, and after BLOCKED_WAIT_S when it never blocks."""
    deadline = asyncio.get_running_loop().time() + BLOCKED_WAIT_S
    while True:
        records, _, _ = await driver.execute_query(
            "SHOW TRANSACTIONS YIELD status, currentQuery "
            "WHERE status STARTS WITH 'Blocked' AND currentQuery CONTAINS $marker RETURN count(*) AS n",
            marker=marker,
            database_=database,
        )
        if records[0]["n"]:
            return
        assert not waiter.done(), f"the second writer did not wait for the first transaction: {waiter.result()!r}"
        assert asyncio.get_running_loop().time() < deadline, f"no transaction blocked within {BLOCKED_WAIT_S:g}s"
        await asyncio.sleep(0.05)


async def test_concurrent_creates_of_one_identity_leave_one_node(driver: AsyncDriver, settings: Settings) -> None:
    """Two open transactions CREATE the same (key, value): the second waits on the first, then is rejected."""
    create = "/* idgraph-test-concurrent-create */ CREATE (:Identity {key: 'phone_number', value: '+14155552671'})"
    async with driver.session(database=settings.neo4j_database) as first_session:
        first = await first_session.begin_transaction()
        await (await first.run(create)).consume()  # uncommitted node holding the constraint's index entry

        async def second_writer() -> str:
            async with driver.session(database=settings.neo4j_database) as session:
                try:
                    await session.execute_write(lambda tx: _run(tx, create))
                except ConstraintError:
                    return "rejected"
                return "committed"

        second = asyncio.create_task(second_writer())
        await _until_blocked(driver, settings.neo4j_database, CONCURRENT_CREATE, second)
        assert not second.done(), "the second writer should wait for the first transaction's lock"
        await first.commit()
        assert await asyncio.wait_for(second, 30) == "rejected"
    records, _, _ = await driver.execute_query(
        "MATCH (i:Identity {key: 'phone_number', value: '+14155552671'}) RETURN count(i) AS n",
        database_=settings.neo4j_database,
    )
    assert records[0]["n"] == 1


async def _run(tx: AsyncManagedTransaction, statement: LiteralString) -> None:
    await (await tx.run(statement)).consume()


async def test_concurrent_merges_of_one_identity_leave_one_node(driver: AsyncDriver, settings: Settings) -> None:
    async def merge_identity() -> None:
        await driver.execute_query(
            "MERGE (i:Identity {key: 'email_address', value: 'john.doe@example.com'})",
            database_=settings.neo4j_database,
        )

    await asyncio.gather(*(merge_identity() for _ in range(16)))
    records, _, _ = await driver.execute_query(
        "MATCH (i:Identity {key: 'email_address'}) RETURN count(i) AS n", database_=settings.neo4j_database
    )
    assert records[0]["n"] == 1
