"""Bulk graph loader for benchmarks: generated records straight into the graph shape the app writes.

`idgraph ingest` stores a few thousand records/s at best, so a million-profile graph through it would take most of
the benchmark budget. This loader writes the same graph directly, in big UNWIND batches, into a database the
app's migrations (app.db.schema.migrate) have prepared:

    (:Profile {id, source, source_id, created_at, updated_at, version, `attr.<name>`, `attr_at.<name>`})
      -[:HAS_IDENTITY|OBSERVED {raw, source, rule_version, first_seen, last_seen}]->
    (:Identity {key, value, rule, rule_version, blocked, saturated, created_at, last_seen [, saturated_at]})

Records are validated (app.domain.validation) and their identities normalized (app.domain.normalize, the real
rules, in worker processes) exactly as the service's ingest path does, so resolve finds what was loaded. Blocked
values get OBSERVED edges and blocked=true. After the load, identities held by more profiles than the strategy's
max_profiles_per_identity are saturated as the app saturates them (saturated=true, saturated_at, their
HAS_IDENTITY edges turned into OBSERVED ones with the same properties). The end state is the one `idgraph ingest`
of the same records reaches; check_shape() compares the two on a sample, and check_resolves() asks the service
to resolve a loaded profile. Records must have distinct (source, source_id): each one creates a profile.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, LiteralString

from neo4j import AsyncDriver

from app.db.records import attribute_properties
from app.domain.model import IdentityKey, ResolutionStatus
from app.domain.normalize import normalize_many
from app.domain.strategy import Strategy
from app.domain.validation import profile_input_from_record
from app.errors import AppError
from app.services.identity import IdentityService
from bench.datagen import records, sharing

Record = dict[str, Any]


def progress(message: str) -> None:
    """A progress line, flushed at once: the benchmarks' output usually goes through a pipe."""
    print(message, flush=True)


# Every link (a profile holding an identity) as a row sorted by (key, value): concurrent writers then lock shared
# identities in one order and cannot deadlock. Identities most rows of a batch share are held back (`deferred`)
# and written last, by one writer, so the others do not queue behind their locks.
_LINKS = """
MATCH (p:Profile {id: l.profile_id}) USING INDEX p:Profile(id)
MERGE (i:Identity {key: l.key, value: l.value})
  ON CREATE SET i.rule = l.rule, i.rule_version = l.rule_version, i.blocked = l.blocked, i.saturated = false,
                i.created_at = $now, i.last_seen = $now
FOREACH (_ IN CASE WHEN l.blocked THEN [] ELSE [1] END |
  CREATE (p)-[:HAS_IDENTITY {raw: l.raw, source: l.source, rule_version: l.rule_version,
                             first_seen: $now, last_seen: $now}]->(i))
FOREACH (_ IN CASE WHEN l.blocked THEN [1] ELSE [] END |
  CREATE (p)-[:OBSERVED {raw: l.raw, source: l.source, rule_version: l.rule_version,
                         first_seen: $now, last_seen: $now}]->(i))
"""

WRITE_BATCH: LiteralString = (
    """
UNWIND $profiles AS row
CREATE (p:Profile)
SET p = row.props, p.created_at = $now, p.updated_at = $now
FOREACH (name IN row.timed | SET p[name] = $now)
WITH count(*) AS created
UNWIND $links AS l
"""
    + _LINKS
)

WRITE_LINKS: LiteralString = "UNWIND $links AS l" + _LINKS

OVER_LIMIT: LiteralString = """
MATCH (i:Identity)
WHERE NOT i.blocked AND NOT i.saturated AND COUNT { (i)<-[:HAS_IDENTITY]-() } > $limit
RETURN i.key AS key, i.value AS value
"""

MARK_SATURATED: LiteralString = """
MATCH (i:Identity {key: $key, value: $value})
SET i.saturated = true, i.saturated_at = $now
"""

STOP_LINKING: LiteralString = """
MATCH (:Identity {key: $key, value: $value})<-[e:HAS_IDENTITY]-(:Profile)
CALL (e) {
  WITH e, startNode(e) AS p, endNode(e) AS i
  CREATE (p)-[o:OBSERVED]->(i)
  SET o = properties(e)
  DELETE e
} IN TRANSACTIONS OF 20000 ROWS
"""


@dataclass(frozen=True)
class Known:
    """A loaded identity that links, with one profile holding it."""

    identity: IdentityKey
    profile_id: str


@dataclass
class Loaded:
    records: int = 0
    profiles: int = 0
    seconds: float = 0.0
    saturated: list[IdentityKey] = field(default_factory=list)
    known: list[Known] = field(default_factory=list)  # a uniform sample of linking phone numbers

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Batch:
    """What WRITE_BATCH writes for some records, and the links held back for the end."""

    profiles: list[dict[str, Any]]
    links: list[dict[str, Any]]
    deferred: list[dict[str, Any]]
    records: int  # records of the chunk, stored or left out


def prepare(chunk: list[Record], strategy: Strategy, now: datetime, shared: int = 4) -> Batch:
    """The parameters of WRITE_BATCH for some records (in a worker process: normalization is the costly part).
    Links to an identity held by `shared` or more of these records are deferred.

    A record is left out where `idgraph ingest` refuses it: invalid, or neither a usable identity nor an attribute."""
    profiles: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for record in chunk:
        try:
            item = profile_input_from_record(record)
        except AppError:
            continue
        accepted, _ = normalize_many(strategy, item.identities)
        if not accepted and not item.attributes:
            continue
        # Times are set in Cypher from one $now: a datetime per row costs the driver more than the rest of the row.
        attributes = attribute_properties(item.attributes, now)
        props = {
            "id": str(uuid.uuid4()),
            "source": item.source,
            "source_id": item.source_id.strip() if item.source_id is not None else None,
            "version": 1,
            **{name: value for name, value in attributes.items() if not isinstance(value, datetime)},
        }
        timed = [name for name, value in attributes.items() if isinstance(value, datetime)]
        profiles.append({"props": props, "timed": timed})
        links += [
            {
                "profile_id": props["id"],
                "source": item.source,
                "key": n.key,
                "value": n.value,
                "raw": n.raw,
                "rule": str(n.rule),
                "rule_version": n.rule_version,
                "blocked": strategy.is_blocked(n.identity),
            }
            for n in accepted
        ]
    links.sort(key=lambda link: (link["key"], link["value"]))
    holders = Counter((link["key"], link["value"]) for link in links)
    hot = {identity for identity, count in holders.items() if count >= shared}
    return Batch(
        profiles,
        [link for link in links if (link["key"], link["value"]) not in hot],
        [link for link in links if (link["key"], link["value"]) in hot],
        len(chunk),
    )


def _chunks(source: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(source)
    while chunk := list(islice(it, size)):
        yield chunk


async def load(
    driver: AsyncDriver,
    source: Iterable[Record],
    strategy: Strategy,
    *,
    batch: int = 5000,
    workers: int = 2,
    writers: int = 2,
    sample: int = 20000,
    say: Callable[[str], None] = progress,
) -> Loaded:
    """Write `source` into the graph: `workers` processes normalize the next batches while `writers` write."""
    now = datetime.now(UTC)
    loaded = Loaded()
    rng = random.Random(11)
    seen_phones = 0
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, asyncio.Future[Batch]] | None] = asyncio.Queue(workers + 1)
    written = 0
    deferred: list[dict[str, Any]] = []

    async def writer() -> None:
        nonlocal seen_phones, written
        while (item := await queue.get()) is not None:
            count, future = item
            ready = await future
            await driver.execute_query(WRITE_BATCH, profiles=ready.profiles, links=ready.links, now=now)
            deferred.extend(ready.deferred)
            loaded.profiles += len(ready.profiles)
            for link in ready.links:
                if link["key"] != "phone_number" or link["blocked"]:
                    continue
                seen_phones += 1  # reservoir sampling: every linking phone equally likely to be kept
                known = Known(IdentityKey(link["key"], link["value"]), link["profile_id"])
                if len(loaded.known) < sample:
                    loaded.known.append(known)
                elif (slot := rng.randrange(seen_phones)) < sample:
                    loaded.known[slot] = known
            written += count
            if written // 100_000 > (written - count) // 100_000:
                say(f"  loaded {written:,} records ({written / (time.perf_counter() - started):,.0f}/s)")

    async def put(item: tuple[int, asyncio.Future[Batch]] | None) -> None:
        """Queue for the writers, or raise a writer's error when one stopped."""
        putting = asyncio.ensure_future(queue.put(item))
        await asyncio.wait({putting, *writing}, return_when=asyncio.FIRST_COMPLETED)
        if not putting.done():
            putting.cancel()
            await asyncio.gather(*writing)
            raise RuntimeError("the bulk loader's writers stopped early")

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        writing = [asyncio.create_task(writer()) for _ in range(writers)]
        try:
            # Making the next chunk of records blocks the event loop for a moment, but not Neo4j: the writers'
            # batches have been sent by then.
            for chunk in _chunks(source, batch):
                loaded.records += len(chunk)
                await put((len(chunk), asyncio.wrap_future(pool.submit(prepare, chunk, strategy, now), loop=loop)))
            for _ in writing:
                await put(None)
            await asyncio.gather(*writing)
        finally:
            for task in writing:
                task.cancel()
    deferred.sort(key=lambda link: (link["key"], link["value"]))
    for start in range(0, len(deferred), batch):
        await driver.execute_query(WRITE_LINKS, links=deferred[start : start + batch], now=now)
    loaded.saturated = await saturate(driver, strategy.protections.max_profiles_per_identity, now)
    gone = set(loaded.saturated)
    loaded.known = [k for k in loaded.known if k.identity not in gone]
    loaded.seconds = time.perf_counter() - started
    return loaded


async def saturate(driver: AsyncDriver, limit: int, now: datetime) -> list[IdentityKey]:
    """Identities held by more than `limit` profiles stop linking, as the app's fan-out rule makes them."""
    if limit <= 0:
        return []
    found, _, _ = await driver.execute_query(OVER_LIMIT, limit=limit)
    over = [IdentityKey(r["key"], r["value"]) for r in found]
    for identity in over:
        await driver.execute_query(MARK_SATURATED, key=identity.key, value=identity.value, now=now)
        async with driver.session() as session:  # CALL ... IN TRANSACTIONS needs an auto-commit transaction
            result = await session.run(STOP_LINKING, key=identity.key, value=identity.value)
            await result.consume()
    return over


async def check_resolves(service: IdentityService, loaded: Loaded) -> None:
    """The service resolves a loaded phone number to a customer holding the profile it was loaded with."""
    if not loaded.known:
        raise SystemExit("bulk load: no linking phone number was loaded")
    known = loaded.known[0]
    resolution = await service.resolve([(known.identity.key, known.identity.value)])
    if resolution.status is not ResolutionStatus.FOUND or resolution.customer is None:
        raise SystemExit(f"bulk load: resolving a loaded phone number gave {resolution.status}, not FOUND")
    if known.profile_id not in {p.id for p in resolution.customer.profiles}:
        raise SystemExit("bulk load: the resolved customer does not hold the profile the phone number was loaded with")


DIGEST: LiteralString = """
MATCH (p:Profile)
OPTIONAL MATCH (p)-[e]->(i:Identity)
RETURN properties(p) AS profile, type(e) AS type, properties(e) AS edge, properties(i) AS identity
"""

# Properties whose values differ from one load to the next (ids and times): only their presence is compared.
_VOLATILE = {"id", "created_at", "updated_at", "first_seen", "last_seen", "saturated_at"}


def _digest_of(rows: list[dict[str, Any]]) -> dict[str, dict[Any, Any]]:
    def stable(props: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(sorted((k, None if k in _VOLATILE or k.startswith("attr_at.") else v) for k, v in props.items()))

    profiles: dict[Any, Any] = {}
    edges: dict[Any, Any] = {}
    identities: dict[Any, Any] = {}
    for row in rows:
        holder = (row["profile"]["source"], row["profile"].get("source_id"))
        profiles[holder] = stable(row["profile"])
        if row["type"] is not None:
            identity = (row["identity"]["key"], row["identity"]["value"])
            edges[(*holder, *identity)] = (row["type"], stable(row["edge"]))
            identities[identity] = stable(row["identity"])
    return {"profile": profiles, "edge": edges, "identity": identities}


async def digest(driver: AsyncDriver) -> dict[str, dict[Any, Any]]:
    """The graph as comparable parts: profiles, edges and identities by their keys, and counts by label or type.
    The change log (labels Change...) is left out: `idgraph import` writes no events (docs/changes.md)."""
    found, _, _ = await driver.execute_query(DIGEST, routing_="r")
    parts = _digest_of([dict(r) for r in found])
    counts, _, _ = await driver.execute_query(
        "MATCH (n) WHERE NOT n:SchemaMigration AND NOT any(l IN labels(n) WHERE l STARTS WITH 'Change') "
        "RETURN labels(n) AS labels, count(*) AS n "
        "UNION ALL MATCH ()-[e]->() RETURN [type(e)] AS labels, count(*) AS n",
        routing_="r",
    )
    parts["count"] = {tuple(r["labels"]): r["n"] for r in counts}
    return parts


async def _wipe(driver: AsyncDriver) -> None:
    await driver.execute_query("MATCH (n) WHERE NOT n:SchemaMigration DETACH DELETE n")


def sample_records(sample: int, strategy: Strategy) -> list[Record]:
    """The shape checks' records: the generated mix (blocked and invalid values, households) and one value shared
    by more profiles than the fan-out limit."""
    limit = strategy.protections.max_profiles_per_identity
    return [*records(sample, seed=991), *sharing(limit + 10, "+1 800 555 0177", tag="shape")]


async def stored_by_service(service: IdentityService, driver: AsyncDriver, chosen: list[Record]) -> dict[str, Any]:
    """Store records through the service's ingest path (records it refuses left out) and digest the graph."""
    items = []
    for record in chosen:
        try:
            items.append(profile_input_from_record(record))
        except AppError:
            continue
    for start in range(0, len(items), 100):
        await service.ingest_batch(items[start : start + 100])
    return await digest(driver)


def compare_digests(service: dict[str, dict[Any, Any]], loader: dict[str, dict[Any, Any]], what: str) -> None:
    """SystemExit naming the first differences between the service's graph and a loader's."""
    differences = [
        f"{part} {key!r}: service {service[part].get(key)!r}, loader {loader[part].get(key)!r}"
        for part in service
        for key in sorted(set(service[part]) | set(loader[part]), key=repr)
        if service[part].get(key) != loader[part].get(key)
    ]
    if differences:
        raise SystemExit(
            f"{what} no longer writes the graph the service writes; first differences:\n  "
            + "\n  ".join(differences[:8])
        )


async def check_shape(driver: AsyncDriver, service: IdentityService, *, sample: int = 300) -> None:
    """Store the same records through the service's ingest path and through this loader, one after the other in
    the (empty, migrated) database, and compare the graphs they leave: the same profiles, identities and edges,
    with the same properties (values too, but for ids and times). Leaves the database empty; SystemExit naming the
    first differences when the graphs differ."""
    found, _, _ = await driver.execute_query("MATCH (n) WHERE NOT n:SchemaMigration RETURN count(n) AS n")
    if found[0]["n"]:
        raise SystemExit("bulk load shape check: the database is not empty")
    chosen = sample_records(sample, service.strategy)
    through_service = await stored_by_service(service, driver, chosen)
    await _wipe(driver)
    await load(driver, chosen, service.strategy, batch=100, workers=1, say=lambda _: None)
    through_loader = await digest(driver)
    await _wipe(driver)
    compare_digests(through_service, through_loader, "the bulk loader (bench/bulkload.py)")
