"""Offline bulk loader for benchmarks: generated records into CSV files, then into a stopped neo4j-local through
Neo4j's own importer (app.db.localserver.offline_import).

The graph is the one bench/bulkload.py writes through Bolt, and the one `idgraph ingest` of the same records
leaves: records validated and normalized by the app's own code (in worker processes), blocked values and
identities held by more profiles than the fan-out limit on OBSERVED edges (those saturated, as the app's fan-out
rule makes them), every time one load time. check_shape() compares it with the service's ingest path on a sample.
Loading through the importer takes a fraction of the time transactions take (1M profiles: see docs/benchmarks.md),
which keeps `make bench` inside its budget. Records must have distinct (source, source_id).

Memory: one entry per distinct identity (its node id, rule and holder count) while the files are written.
"""

from __future__ import annotations

import asyncio
import csv
import multiprocessing
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from app.config import Settings
from app.db import localserver
from app.db.driver import create_driver
from app.db.repository import Neo4jRepository
from app.db.schema import migrate
from app.domain.model import IdentityKey
from app.domain.strategy import Strategy
from app.services.identity import IdentityService
from bench.bulkload import (
    Known,
    Loaded,
    Record,
    compare_digests,
    digest,
    prepare,
    progress,
    sample_records,
    stored_by_service,
)

_EDGE_HEADER = [":START_ID(Profile)", ":END_ID(Identity)", "raw", "source", "rule_version",
                "first_seen:datetime", "last_seen:datetime"]  # fmt: skip
_IDENTITY_HEADER = [":ID(Identity)", "key", "value", "rule", "rule_version", "blocked:boolean", "saturated:boolean",
                    "created_at:datetime", "last_seen:datetime", "saturated_at:datetime"]  # fmt: skip
_TYPES = {str: "", bool: ":boolean", int: ":long", float: ":double"}


@dataclass
class _Identity:
    node: int
    rule: str
    rule_version: str
    blocked: bool
    linking: int = 0  # profiles that would link through it (blocked values link no one)


@dataclass
class _Files:
    """The CSV files of one import, written as the records stream through."""

    directory: Path
    profiles: dict[tuple[str, ...], tuple[Path, Any, IO[str]]] = field(default_factory=dict)  # by attribute columns
    opened: list[IO[str]] = field(default_factory=list)

    def profile_writer(self, columns: tuple[str, ...]) -> Any:
        if columns not in self.profiles:
            path = self.directory / f"profiles-{len(self.profiles)}.csv"
            out = path.open("w", newline="", encoding="utf-8")
            self.opened.append(out)
            writer = csv.writer(out)
            writer.writerow([":ID(Profile)", "id", "source", "source_id", "created_at:datetime",
                             "updated_at:datetime", "version:long", *columns])  # fmt: skip
            self.profiles[columns] = (path, writer, out)
        return self.profiles[columns][1]

    def close(self) -> None:
        for out in self.opened:
            out.close()


def _chunks(source: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in source:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load(
    server: localserver.LocalServer,
    source: Iterable[Record],
    strategy: Strategy,
    *,
    batch: int = 5000,
    workers: int = 2,
    sample: int = 20000,
    sample_first: int | None = None,
    say: Callable[[str], None] = progress,
) -> Loaded:
    """Replace the database of `server` (stopped, then started again) with the graph of `source`. The schema is
    gone afterwards: run the migrations (app.db.schema.migrate) before using it. `known` samples the linking phone
    numbers of the first `sample_first` records (of all, when None; counted in whole batches)."""
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    limit = strategy.protections.max_profiles_per_identity
    work = server.home.parent / f"{server.home.name}-import"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = _Files(work)
    identities: dict[IdentityKey, _Identity] = {}
    loaded = Loaded()
    rng = random.Random(11)
    seen_phones = 0
    links_path = work / "links.tmp.csv"
    try:
        with links_path.open("w", newline="", encoding="utf-8") as links_out:
            links = csv.writer(links_out)
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = (
                    pool.submit(_prepare, chunk, n * batch, strategy, now)
                    for n, chunk in enumerate(_chunks(source, batch))
                )
                pending = [next(futures, None) for _ in range(workers + 1)]
                while (future := pending.pop(0)) is not None:
                    pending.append(next(futures, None))
                    ready = future.result()
                    sampling = sample_first is None or loaded.records < sample_first
                    for columns, rows in ready.profiles.items():
                        files.profile_writer(columns).writerows(rows)
                    loaded.profiles += ready.profile_count
                    for node, key_name, value, raw, source_name, rule, rule_version, blocked, profile_id in ready.links:
                        key = IdentityKey(key_name, value)
                        found = identities.get(key)
                        if found is None:
                            found = identities[key] = _Identity(len(identities) + 1, rule, rule_version, blocked)
                        found.linking += not blocked
                        links.writerow([node, found.node, raw, source_name, rule_version])
                        if key_name == "phone_number" and not blocked and sampling:
                            seen_phones += 1  # reservoir sampling: every linking phone equally likely to be kept
                            known = Known(key, profile_id)
                            if len(loaded.known) < sample:
                                loaded.known.append(known)
                            elif (slot := rng.randrange(seen_phones)) < sample:
                                loaded.known[slot] = known
                    loaded.records += ready.records
                    if loaded.records // 100_000 > (loaded.records - ready.records) // 100_000:
                        rate = loaded.records / (time.perf_counter() - started)
                        say(f"  prepared {loaded.records:,} records ({rate:,.0f}/s)")
        files.close()
        saturated = {k for k, v in identities.items() if limit > 0 and not v.blocked and v.linking > limit}
        loaded.saturated = sorted(saturated)
        loaded.known = [k for k in loaded.known if k.identity not in saturated]
        nodes_by_id = _write_identities(work / "identities.csv", identities, saturated, now)
        relationships = _write_edges(work, links_path, nodes_by_id, now)
        del identities, nodes_by_id
        localserver.stop(server)
        say(f"  importing {loaded.profiles:,} profiles offline...")
        localserver.offline_import(
            server,
            [("Profile", path) for path, _, _ in files.profiles.values()] + [("Identity", work / "identities.csv")],
            relationships,
            say=say,
        )
        localserver.start(server, say=say)
    finally:
        files.close()
        shutil.rmtree(work, ignore_errors=True)
    loaded.seconds = time.perf_counter() - started
    return loaded


@dataclass(frozen=True)
class _Prepared:
    """One chunk's share of the files, made in a worker process: profile rows by their columns, and links."""

    profiles: dict[tuple[str, ...], list[list[Any]]]
    profile_count: int
    links: list[tuple[Any, ...]]  # (profile node, key, value, raw, source, rule, rule_version, blocked, profile id)
    records: int


def _prepare(chunk: list[Record], first_node: int, strategy: Strategy, now: str) -> _Prepared:
    """Validate and normalize a chunk (bench.bulkload.prepare: the app's own rules) and lay it out as CSV rows.
    Profile node ids are first_node + 1, + 2, ...: unique across chunks, in order."""
    ready = prepare(chunk, strategy, datetime.now(UTC))
    profiles: dict[tuple[str, ...], list[list[Any]]] = {}
    nodes: dict[str, int] = {}
    for n, profile in enumerate(ready.profiles, first_node + 1):
        props = profile["props"]
        names = sorted(k for k, v in props.items() if k.startswith("attr.") and v is not None)
        timed = sorted(profile["timed"])
        columns = tuple([f"{name}{_TYPES[type(props[name])]}" for name in names] + [f"{t}:datetime" for t in timed])
        row = [n, props["id"], props["source"], props.get("source_id"), now, now, props["version"]]
        profiles.setdefault(columns, []).append(row + [props[name] for name in names] + [now] * len(timed))
        nodes[props["id"]] = n
    links = [
        (
            nodes[link["profile_id"]],
            link["key"],
            link["value"],
            link["raw"],
            link["source"],
            link["rule"],
            link["rule_version"],
            link["blocked"],
            link["profile_id"],
        )
        for link in (*ready.links, *ready.deferred)
    ]
    return _Prepared(profiles, len(ready.profiles), links, ready.records)


def _write_identities(
    path: Path, identities: dict[IdentityKey, _Identity], saturated: set[IdentityKey], now: str
) -> dict[int, bool]:
    """identities.csv; returns, by node id, whether the identity links (not blocked, not saturated)."""
    links: dict[int, bool] = {}
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(_IDENTITY_HEADER)
        for key, found in identities.items():
            over = key in saturated
            writer.writerow(
                [
                    found.node,
                    key.key,
                    key.value,
                    found.rule,
                    found.rule_version,
                    str(found.blocked).lower(),
                    str(over).lower(),
                    now,
                    now,
                    now if over else None,
                ]
            )
            links[found.node] = not (found.blocked or over)
    return links


def _write_edges(work: Path, links_path: Path, linking: dict[int, bool], now: str) -> list[tuple[str, Path]]:
    """HAS_IDENTITY edges for linking identities, OBSERVED for blocked and saturated ones."""
    paths = {True: work / "has_identity.csv", False: work / "observed.csv"}
    with (
        links_path.open(newline="", encoding="utf-8") as source,
        paths[True].open("w", newline="", encoding="utf-8") as has_out,
        paths[False].open("w", newline="", encoding="utf-8") as observed_out,
    ):
        writers = {True: csv.writer(has_out), False: csv.writer(observed_out)}
        for writer in writers.values():
            writer.writerow(_EDGE_HEADER)
        for profile, identity, raw, source_name, rule_version in csv.reader(source):
            writers[linking[int(identity)]].writerow([profile, identity, raw, source_name, rule_version, now, now])
    links_path.unlink()
    return [("HAS_IDENTITY", paths[True]), ("OBSERVED", paths[False])]


async def migrated(uri: str) -> None:
    """Apply the app's migrations to the database at `uri` (after an import, which leaves no schema)."""
    settings = Settings.from_env({"NEO4J_URI": uri})
    driver = create_driver(settings)
    try:
        await migrate(driver, settings.neo4j_database)
    finally:
        await driver.close()


def check_shape(server: localserver.LocalServer, strategy: Strategy, *, sample: int = 300) -> None:
    """Store a sample through the service's ingest path, then import it with this loader, and compare the graphs
    (bench.bulkload.compare_digests). The database of `server` (running, migrated, empty) holds the imported sample
    afterwards; SystemExit naming the first differences when the graphs differ."""
    chosen = sample_records(sample, strategy)

    async def through_service() -> dict[str, dict[Any, Any]]:
        driver = create_driver(Settings.from_env({"NEO4J_URI": server.uri}))
        try:
            service = IdentityService(
                Neo4jRepository(driver, token_key=b"bench-token-key", timeout_s=60.0), strategy, b"bench-key"
            )
            return await stored_by_service(service, driver, chosen)
        finally:
            await driver.close()

    async def through_loader() -> dict[str, dict[Any, Any]]:
        await migrated(server.uri)
        driver = create_driver(Settings.from_env({"NEO4J_URI": server.uri}))
        try:
            return await digest(driver)
        finally:
            await driver.close()

    service_digest = asyncio.run(through_service())
    load(server, chosen, strategy, batch=100, workers=1, say=lambda _: None)
    compare_digests(service_digest, asyncio.run(through_loader()), "the offline loader (bench/importer.py)")
