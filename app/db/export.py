"""The export's read: every profile with its customer, in two passes over the profiles, each read once.

1. cypher/export_links.cypher pages through the profiles in id order, each with the identities it shares with
   another profile and the profiles it was merged into; a union-find over profiles and identities makes the
   customers as the pages arrive: every component is computed once, whatever its size, instead of being walked
   from each of its profiles.
2. cypher/export_profiles.cypher pages through the profiles in id order again; each row is yielded as soon as its
   page arrives, with the oldest profile (created_at, then id) of its component as customer_id, or its own id when
   nothing links it to another profile.

Each page comes back as one record: the async driver spends far more per record (a socket wait and a task each)
than per value, so a record per profile made the export bound by the client's CPU.

Memory: one entry per profile that shares an identity or a merge with another, and per shared identity (its key
and its parent in the union-find; for each customer, its oldest profile), none for the profiles that stand alone,
and one page of rows at a time. Components are whole: the export reads every linking edge anyway, so it does not
stop at max_component_nodes (see Components).

Both passes run in one read transaction. Neo4j reads at read-committed isolation, so this is not a snapshot: a
write that commits while the export runs may show in one pass and not the other (a new profile is then its own
customer) or the other way round.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from neo4j import READ_ACCESS, AsyncDriver, AsyncTransaction
from neo4j import exceptions as neo4j_errors

from app.db.driver import translate
from app.db.queries import query
from app.domain.model import ExportRow

# The oldest first: a profile with created_at, then one without (as Cypher's ORDER BY puts nulls last), by id; an
# identity, or a profile not read yet (the target of a merge), is older than nothing until a profile's age arrives.
_Age = tuple[int, int, str]


def _age(profile_id: str, created_ns: int | None) -> _Age:
    return (0, created_ns, profile_id) if created_ns is not None else (1, 0, profile_id)


def _unknown(key: str) -> _Age:
    return (2, 0, key)


class Components:
    """Customers as connected components of profiles, built from groups of profiles known to be connected (the
    holders of one identity, the two ends of a merge), in any order. The customer of a profile is the id of the
    oldest profile (created_at, then id) of its whole component, however large: max_component_nodes, which bounds
    the walks of resolve and the customer reads, does not apply here (every profile of a component gets the same
    customer_id, its oldest; a resolve of the same customer reads only part of it and says it is truncated)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._oldest: dict[str, _Age] = {}  # by root

    def join(self, profile_id: str, created_ns: int | None, others: Sequence[str]) -> None:
        """Put the profile, created at `created_ns` (epoch nanoseconds, or None), in one component with `others`:
        the keys of the shared identities it holds and the ids of the profiles it was merged into."""
        root = self._root_of(profile_id, _age(profile_id, created_ns))
        for other in others:
            mine = self._root_of(other, _unknown(other))
            if mine != root:
                root = self._union(root, mine)

    def customer_of(self, profile_id: str) -> str:
        """The id of the oldest profile of the component of `profile_id`; the profile itself when it was never
        joined to another."""
        if profile_id not in self._parent:
            return profile_id
        return self._oldest[self._find(profile_id)][2]

    def __len__(self) -> int:
        """How many profiles were joined to another."""
        return len(self._parent)

    def _root_of(self, key: str, age: _Age) -> str:
        if key not in self._parent:
            self._parent[key] = key
            self._oldest[key] = age
            return key
        root = self._find(key)
        if age < self._oldest[root]:
            self._oldest[root] = age
        return root

    def _find(self, profile_id: str) -> str:
        parent = self._parent
        while (up := parent[profile_id]) != profile_id:
            parent[profile_id] = parent[up]  # path halving
            profile_id = up
        return profile_id

    def _union(self, a: str, b: str) -> str:
        """Join the components of roots `a` and `b`; returns the root of the union (the one holding its oldest)."""
        keep, drop = (a, b) if self._oldest[a] <= self._oldest[b] else (b, a)
        self._parent[drop] = keep
        del self._oldest[drop]
        return keep


async def export_rows(driver: AsyncDriver, database: str, *, batch_size: int = 5000) -> AsyncIterator[ExportRow]:
    """Every profile in id order with its customer (see the module's docstring). `batch_size`: the profiles of one
    page (one record). Driver failures become the AppErrors of app.db.driver.translate."""
    try:
        async with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            tx = await session.begin_transaction(timeout=0)  # no time limit: it reads the whole graph
            try:
                components = Components()
                async for page in _pages(tx, "export_links", batch_size):
                    for profile_id, created_ns, identities, merged_into in page:
                        if identities:
                            components.join(profile_id, created_ns, identities)
                        for target_id, target_created_ns in merged_into:
                            components.join(profile_id, created_ns, [target_id])
                            components.join(target_id, target_created_ns, [profile_id])
                async for page in _pages(tx, "export_profiles", batch_size):
                    for profile_id, source, source_id in page:
                        yield ExportRow(profile_id, source or "", source_id, components.customer_of(profile_id))
            finally:
                await tx.close()  # a read: nothing to commit
    except (neo4j_errors.DriverError, neo4j_errors.Neo4jError, OSError) as exc:
        app_error = translate(exc)
        if app_error is None:
            raise
        raise app_error from exc


async def _pages(tx: AsyncTransaction, name: str, size: int) -> AsyncIterator[list[list[Any]]]:
    """The pages of a keyset-paged statement ($after, $limit; returns rows and the last key), one record each."""
    after = ""
    while True:
        record = await (await tx.run(query(name), after=after, limit=size)).single(strict=True)
        rows: list[list[Any]] = record["rows"]
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = record["last"]
