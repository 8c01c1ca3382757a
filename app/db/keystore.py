"""The erasure key node in Neo4j: the check every write transaction starts with, the read /readyz makes, and the
steps of a rotation (mark, wait for older transactions, re-key the suppression list page by page, finish)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncTransaction

from app.db.queries import query
from app.db.transactions import run_transaction
from app.domain.suppression import rekeyed
from app.erasure_key import KEY_NODE_ID, UNRECORDED_STATE, ErasureKey, StoredKey
from app.errors import ErasureKeyMismatch

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def stored_key(row: Mapping[str, Any]) -> StoredKey | None:
    """The key node of an erasure_key row; None when the database has no key recorded. A database with a suppression
    list but no key recorded (made before idgraph recorded one) is refused until `idgraph key adopt` records it."""
    if row["fingerprint"] is None:
        if row.get("unrecorded_list"):
            return StoredKey(fingerprint="", state=UNRECORDED_STATE, generation=0, wrapped=None, rotating_to=None)
        return None
    return StoredKey(
        fingerprint=str(row["fingerprint"]),
        state=str(row["state"]),
        generation=int(row["generation"]),
        wrapped=None if row["wrapped"] is None else str(row["wrapped"]),
        rotating_to=None if row["rotating_to"] is None else str(row["rotating_to"]),
    )


async def _row(tx: AsyncTransaction, name: str, **params: Any) -> dict[str, Any] | None:
    result = await tx.run(query(name), params)
    record = await result.single()
    return None if record is None else record.data()


async def read_key_in(tx: AsyncTransaction) -> StoredKey | None:
    row = await _row(tx, "erasure_key", id=KEY_NODE_ID)
    return None if row is None else stored_key(row)


async def check_key_in(tx: AsyncTransaction, key: ErasureKey) -> None:
    """The first statement of a write transaction: a plain read of the key node (no lock, so writers do not wait for
    each other), MERGE only when it is missing (the first writer records its key). Raises ErasureKeyMismatch, so the
    transaction writes nothing, when the database's key is another one or is being rotated."""
    stored = await read_key_in(tx)
    if stored is None:
        row = await _row(tx, "record_erasure_key", id=KEY_NODE_ID, fingerprint=key.fingerprint, now=datetime.now(UTC))
        stored = None if row is None else stored_key(row)
    key.accept(stored)


async def read_stored_key(driver: AsyncDriver, database: str) -> StoredKey | None:
    """The key node, read in an auto-commit query (for /readyz: never writes)."""
    records, _, _ = await driver.execute_query(query("erasure_key"), id=KEY_NODE_ID, database_=database, routing_="r")
    return stored_key(records[0].data())


class KeyStore:
    """The erasure key node and the suppression list, for the CLI's up-front check and for `idgraph key rotate`."""

    def __init__(self, driver: AsyncDriver, *, database: str = "neo4j", timeout_s: float = 60.0) -> None:
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s

    async def _write(self, name: str, **params: Any) -> dict[str, Any] | None:
        async def work(tx: AsyncTransaction) -> dict[str, Any] | None:
            return await _row(tx, name, **params)

        value, _ = await run_transaction(
            self._driver, work, database=self._database, write=True, budget_s=self._timeout_s
        )
        return value

    async def check(self, key: ErasureKey, *, record: bool) -> None:
        """Check `key` against the database, recording it first when none is (`record`); ErasureKeyMismatch if not."""

        async def work(tx: AsyncTransaction) -> None:
            if record:
                await check_key_in(tx, key)
            else:
                key.accept(await read_key_in(tx))

        await run_transaction(self._driver, work, database=self._database, write=record, budget_s=self._timeout_s)

    async def adopt(self, key: ErasureKey) -> bool:
        """Record `key` as the database's on a database that has none recorded, whatever its suppression list holds
        (the operator vouches that this key made it); False when it already had this key. ErasureKeyMismatch when
        it holds another."""
        row = await self._write("erasure_key", id=KEY_NODE_ID)
        if row is not None and row["fingerprint"] is not None:
            key.accept(stored_key(row))
            return False
        recorded = await self._write("record_erasure_key", id=KEY_NODE_ID, fingerprint=key.fingerprint, now=_now())
        key.accept(None if recorded is None else stored_key(recorded))
        return True

    async def begin_rotation(self, old: str, new: str) -> bool:
        """Mark the key node rotating from fingerprint `old` to `new`; False when it holds neither (committed)."""
        row = await self._write("begin_key_rotation", id=KEY_NODE_ID, old=old, new=new, now=datetime.now(UTC))
        return row is not None

    async def abort_rotation(self, new: str) -> bool:
        """Call off the rotation to `new` if it has re-keyed nothing; False when it cannot be called off."""
        return await self._write("abort_key_rotation", id=KEY_NODE_ID, new=new) is not None

    async def wait_for_older_transactions(self, timeout_s: float, poll_s: float = 0.2) -> bool:
        """Wait until every transaction that began before now (server time) has ended; False after `timeout_s`."""
        records, _, _ = await self._driver.execute_query(query("server_time"), database_=self._database)
        before = records[0]["now"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            # SHOW TRANSACTIONS lists the transactions of the server it runs on: the writer (leader), in a cluster.
            records, _, _ = await self._driver.execute_query(
                query("transactions_before"), database=self._database, before=before, database_=self._database
            )
            if int(records[0]["older"]) == 0:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll_s)

    async def rekey_page(self, new_key: bytes, target: str, after: str, limit: int) -> tuple[int, str | None]:
        """Re-key one page of the suppression list (one transaction, while the node rotates to `target`); returns
        how many entries were re-keyed and the cursor of the next page (None: the list is done)."""

        async def work(tx: AsyncTransaction) -> tuple[int, str | None]:
            stored = await read_key_in(tx)
            if stored is None or stored.state != "rotating" or stored.rotating_to != target:
                raise ErasureKeyMismatch("the rotation was called off or replaced by another; nothing more re-keyed")
            result = await tx.run(query("suppression_page"), after=after, target=target, limit=limit)
            hashes: Sequence[str] = [str(r["hash"]) async for r in result]
            if not hashes:
                return 0, None
            rows = [{"old": h, "new": rekeyed(new_key, h)} for h in hashes]
            done = await _row(tx, "rekey_suppressions", target=target, rows=rows)
            return (0 if done is None else int(done["rekeyed"])), hashes[-1]

        value, _ = await run_transaction(
            self._driver, work, database=self._database, write=True, budget_s=self._timeout_s
        )
        return value

    async def finish_rotation(self, target: str, wrapped: str) -> int | None:
        """Make `target` the database's key; its new generation, or None when entries are left to re-key."""
        row = await self._write(
            "finish_key_rotation", id=KEY_NODE_ID, target=target, wrapped=wrapped, now=datetime.now(UTC)
        )
        return None if row is None else int(row["generation"])

    async def read(self) -> StoredKey | None:
        return await read_stored_key(self._driver, self._database)


def checked_work(
    work: Callable[[AsyncTransaction], Awaitable[T]], key: ErasureKey | None
) -> Callable[[AsyncTransaction], Awaitable[T]]:
    """`work`, preceded in its transaction by the erasure key check when there is a key to check."""
    if key is None:
        return work
    checked_key = key

    async def checked(tx: AsyncTransaction) -> T:
        await check_key_in(tx, checked_key)
        return await work(tx)

    return checked
