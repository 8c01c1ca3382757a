"""A request's time budget is also its Neo4j transaction timeout: when the client gives up with TIMEOUT, the server
terminates the transaction, instead of running it (and holding its locks) to the end.

The driver closes its connection when it gives up, and the server ends the transactions of a connection it sees
closed; but a connection through a load balancer or across a network partition can stay open on the server's side.
These tests connect through a relay that keeps the server's side open when the client's closes, so only the
transaction timeout can end the server's work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import LiteralString

import pytest
from neo4j import AsyncTransaction

from app.config import Settings
from app.db.driver import AsyncDriver, create_driver
from app.db.transactions import run_read, run_transaction
from app.errors import Timeout

pytestmark = pytest.mark.neo4j

MARKER = "idgraph-timeout-test"
# A read that takes far longer than any test's budget (a billion rows, counted one by one).
SLOW_READ: LiteralString = (
    "/* idgraph-timeout-test */ UNWIND range(1, 1000000000) AS x WITH x WHERE x < 0 RETURN count(x) AS n"
)
LOCKED_WRITE: LiteralString = "/* idgraph-timeout-test */ MATCH (p:Profile {id: 'locked'}) SET p.touched = true"
BUDGET_S = 1.0


async def _listed(driver: AsyncDriver, database: str) -> list[str]:
    """The transactions the server still runs for the statements of these tests."""
    records, _, _ = await driver.execute_query(
        "SHOW TRANSACTIONS YIELD transactionId, currentQuery WHERE currentQuery CONTAINS $marker "
        "AND NOT currentQuery CONTAINS 'SHOW TRANSACTIONS' RETURN transactionId",
        marker=MARKER,
        database_=database,
    )
    return [str(r["transactionId"]) for r in records]


async def _gone_within(driver: AsyncDriver, database: str, seconds: float) -> list[str]:
    """Polls until no such transaction is listed, or the time is up; returns what is still listed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    listed = await _listed(driver, database)
    while listed and loop.time() < deadline:
        await asyncio.sleep(0.1)
        listed = await _listed(driver, database)
    return listed


class HalfOpenRelay:
    """A TCP relay to Neo4j that, when a client closes its connection, keeps the connection to Neo4j open."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, close: bool) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        if close:
            writer.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers += [client_writer, up_writer]
        for task in (
            asyncio.create_task(self._pump(client_reader, up_writer, close=False)),  # the server's side stays open
            asyncio.create_task(self._pump(up_reader, client_writer, close=True)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield f"bolt://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            server.close()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for writer in self.writers:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await server.wait_closed()


@pytest.fixture
async def relayed(settings: Settings) -> AsyncIterator[AsyncDriver]:
    """A driver whose connections go through a HalfOpenRelay."""
    async with HalfOpenRelay(settings.neo4j_host, settings.neo4j_port).running() as uri:
        relayed_driver = create_driver(replace(settings, neo4j_uri=uri))
        try:
            yield relayed_driver
        finally:
            await relayed_driver.close()


@pytest.fixture
async def held_lock(driver: AsyncDriver, settings: Settings) -> AsyncIterator[None]:
    """A profile write-locked by an open transaction of the test's own, for the whole test."""
    await driver.execute_query("CREATE (:Profile {id: 'locked'})", database_=settings.neo4j_database)
    async with driver.session(database=settings.neo4j_database) as session:
        tx = await session.begin_transaction()
        try:
            await (await tx.run("MATCH (p:Profile {id: 'locked'}) SET p.holder = 'test'")).consume()
            yield
        finally:
            await tx.rollback()


async def test_a_slow_read_past_its_budget_is_terminated_by_the_server(
    driver: AsyncDriver, relayed: AsyncDriver, settings: Settings
) -> None:
    with pytest.raises(Timeout):
        await run_read(relayed, SLOW_READ, {}, database=settings.neo4j_database, budget_s=BUDGET_S)
    assert await _gone_within(driver, settings.neo4j_database, 15.0) == []


async def test_a_write_waiting_on_a_lock_past_its_budget_is_terminated_by_the_server(
    driver: AsyncDriver, relayed: AsyncDriver, settings: Settings, held_lock: None
) -> None:
    async def work(tx: AsyncTransaction) -> None:
        await (await tx.run(LOCKED_WRITE)).consume()

    with pytest.raises(Timeout):
        await run_transaction(relayed, work, database=settings.neo4j_database, write=True, budget_s=BUDGET_S)
    # The lock is still held: only the server's timeout can end the waiting transaction.
    assert await _gone_within(driver, settings.neo4j_database, 15.0) == []
