"""The plumbing every Neo4j repository shares: read and write transactions with the time budget, auto-commit
reads, signed consistency tokens, and the lock loop that holds whole customers still."""

from __future__ import annotations

import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncTransaction, Bookmarks

from app.db import records
from app.db.keystore import checked_work
from app.db.queries import query
from app.db.statements import Rows, fetch
from app.db.transactions import Interfered, run_read, run_transaction
from app.erasure_key import ErasureKey
from app.errors import Conflict, InvalidInput
from app.services.ports import (
    ProfileComponent,
)

T = TypeVar("T")


def _bookmarks(consistency: str | None, token_key: bytes) -> Bookmarks | None:
    try:
        return records.bookmarks_from(consistency, token_key)
    except (ValueError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("consistencyToken is not a token this service issued") from None


MAX_LINKS_PER_PROFILE = 500

# How many times an erasure reads its customer again after locking the profiles that joined it meanwhile.
MAX_LOCK_ROUNDS = 20


class RepositoryBase:
    def __init__(
        self,
        driver: AsyncDriver,
        *,
        token_key: bytes,
        database: str = "neo4j",
        timeout_s: float = 5.0,
        erasure_key: ErasureKey | None = None,
        max_links_per_profile: int = MAX_LINKS_PER_PROFILE,
    ) -> None:
        """`token_key` signs the consistency tokens this repository issues and checks those it is given
        (records.token_key(erasure_key): every replica sharing the erasure key honours the others' tokens). A read
        returns at most `max_links_per_profile` links of one profile (the strategy's max_identities_per_profile) and
        marks the customer truncated when a profile holds more.
        With `erasure_key`, every write transaction first checks it against the database's (ErasureKeyMismatch)."""
        self._driver = driver
        self._max_links = max_links_per_profile
        self._token_key = token_key
        self._database = database
        self._timeout_s = timeout_s
        self._erasure_key = erasure_key

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _read(self, work: Callable[[AsyncTransaction], Awaitable[T]], consistency: str | None = None) -> T:
        value, _ = await run_transaction(
            self._driver,
            work,
            database=self._database,
            write=False,
            bookmarks=_bookmarks(consistency, self._token_key),
            budget_s=self._timeout_s,
        )
        return value

    async def _write(
        self, work: Callable[[AsyncTransaction], Awaitable[T]], timeout_s: float | None = None
    ) -> tuple[T, str]:
        value, bookmarks = await run_transaction(
            self._driver,
            checked_work(work, self._erasure_key),
            database=self._database,
            write=True,
            budget_s=timeout_s or self._timeout_s,
        )
        return value, records.token_from(bookmarks, self._token_key)

    async def _one(self, name: str, consistency: str | None = None, *, leader: bool = False, **params: Any) -> Rows:
        """A single read statement, auto-committed: one round trip."""
        return await run_read(
            self._driver,
            query(name),
            params,
            database=self._database,
            bookmarks=_bookmarks(consistency, self._token_key),
            budget_s=self._timeout_s,
            leader=leader,
        )

    async def _query(self, name: str, consistency: str | None = None, **params: Any) -> Rows:
        async def work(tx: AsyncTransaction) -> Rows:
            return await fetch(tx, name, **params)

        return await self._read(work, consistency)

    async def _lock_customers(
        self,
        tx: AsyncTransaction,
        seeds: Sequence[str],
        max_nodes: int,
        *,
        too_large: str = "the customer has more than {max_nodes} nodes; erase its profiles one by one",
    ) -> set[str]:
        """Write-lock every profile of the seeds' customers and every identity they hold, reading the customers again
        after each round of locks until a read finds no profile that is not locked yet: from then on nobody can link
        a profile to them before `tx` ends. Returns the profiles of that last read (a seed missing from them does not
        exist): a profile locked in an earlier round that has left the customers since (an unlink or unmerge that
        committed meanwhile) stays locked but is not theirs."""
        locked: set[str] = set()
        for _ in range(MAX_LOCK_ROUNDS):
            wanted: set[str] = set()
            for seed in seeds:
                component = await self._component_in(tx, seed, max_nodes)
                if component is not None and component.truncated:
                    raise Conflict(too_large.format(max_nodes=max_nodes))
                if component is not None:
                    wanted |= set(component.profile_ids)
            if wanted <= locked:
                return wanted
            present = {r["profile_id"] for r in await fetch(tx, "lock_profiles", profile_ids=sorted(wanted - locked))}
            await fetch(tx, "lock_held_identities", profile_ids=sorted(present))
            locked |= present
        raise Interfered()

    async def _component_in(self, tx: AsyncTransaction, profile_id: str, max_nodes: int) -> ProfileComponent | None:
        """The customer of one profile, read inside the given transaction (None: no such profile)."""
        rows = await fetch(tx, "component_from_profiles", profile_ids=[profile_id], max_nodes=max_nodes)
        if not rows:
            return None
        return ProfileComponent(tuple(rows[0]["profile_ids"]), rows[0]["node_count"] > max_nodes)
