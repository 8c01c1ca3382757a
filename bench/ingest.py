"""Bulk ingestion throughput: `idgraph ingest` of a generated JSON Lines file, beside a raw `UNWIND ... CREATE` of
the same rows, each into a fresh scratch Neo4j, in the same run.

    .venv/bin/python -m bench.ingest --records 1000000

The file comes from bench/datagen.py (phone and email spellings of every kind, shared household phones, switchboard
numbers, junk values). `idgraph ingest` runs as a child process, as an operator runs it; its peak RSS is read from
the kernel's accounting of that child (wait4). The baseline loads the same rows with one CREATE statement per
batch, the same batch size and as many concurrent writers, with plain (non-unique) indexes on the properties the
schema indexes: no normalization, no idempotency, no linking rules.

A third phase, the idempotent floor, loads the same rows under idgraph's own schema (its unique constraints) with
the least a re-runnable load must do: MERGE each profile on (source, source_id), MERGE each identity on its raw
(key, value), MERGE the edge between them, in one statement per batch shaped like idgraph's (profiles in sorted
order, then identities in sorted order, so its locks are taken in the same order): no normalization, no
suppression list, no fan-out rule, no history. It says what any load that can be re-run without duplicates costs
on this machine, beside the raw CREATE that cannot. Each phase first loads (then deletes) --warmup records of
another seed, so all are timed on a warmed-up JVM rather than a cold one. With BENCH_NEO4J_URI set, that database
is wiped (data, constraints, indexes) before each phase.

Every phase reports the CPU its loading process (the `idgraph ingest` child, or this process for the two statement
loads) and the scratch Neo4j (from /proc; "-" for BENCH_NEO4J_URI) spent on the timed load, per record and as a
share of the machine's cores: a phase near 100% is bound by CPU, and a target's rate is then bounded by its CPU per
record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, LiteralString

from neo4j import AsyncDriver, AsyncGraphDatabase

from app.config import REPO_ROOT
from bench.datagen import records
from bench.harness import (
    WORK,
    Target,
    child_env,
    neo4j_pid,
    process_cpu_s,
    record_targets,
    scratch_database,
    table,
    write_section,
)
from bench.importer import migrated

BASELINE: LiteralString = """
UNWIND $rows AS row
CREATE (p:Profile {id: row.id, source: row.source, source_id: row.source_id, created_at: $now, updated_at: $now})
SET p += row.attributes
WITH p, row
UNWIND row.identities AS i
CREATE (p)-[:HAS_IDENTITY {raw: i.value, source: row.source, first_seen: $now, last_seen: $now}]->
       (:Identity {key: i.key, value: i.value})
"""

FLOOR: LiteralString = """
CALL () {
  UNWIND $rows AS row
  MERGE (p:Profile {source: row.source, source_id: row.source_id})
    ON CREATE SET p.id = row.id, p.created_at = $now
  SET p += row.attributes, p.updated_at = $now
  RETURN collect(p) AS profiles
}
UNWIND $identities AS ident
MERGE (i:Identity {key: ident.key, value: ident.value})
WITH i, ident, profiles
UNWIND ident.holders AS h
WITH i, profiles[h[0]] AS p, h[1] AS raw, $rows[h[0]].source AS source
MERGE (p)-[e:HAS_IDENTITY]->(i)
  ON CREATE SET e.raw = raw, e.source = source, e.first_seen = $now
SET e.last_seen = $now
"""

BASELINE_INDEXES: tuple[LiteralString, ...] = (
    "CREATE INDEX bench_profile_id IF NOT EXISTS FOR (p:Profile) ON (p.id)",
    "CREATE INDEX bench_profile_source IF NOT EXISTS FOR (p:Profile) ON (p.source, p.source_id)",
    "CREATE INDEX bench_identity IF NOT EXISTS FOR (i:Identity) ON (i.key, i.value)",
    "CREATE INDEX bench_profile_updated IF NOT EXISTS FOR (p:Profile) ON (p.updated_at)",
)


@dataclass(frozen=True)
class Phase:
    seconds: float
    rate: float
    peak_rss_mb: float | None = None
    cpu_s: float | None = None  # user + system CPU of the loading process (idgraph ingest, or this one)
    neo4j_cpu_s: float | None = None  # user + system CPU of the scratch Neo4j during the timed load
    summary: str = ""


def generate(path: Path, count: int, seed: int = 7) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records(count, seed=seed):
            out.write(json.dumps(record) + "\n")
    return path.stat().st_size


def run_ingest(uri: str, path: Path, count: int, batch: int, workers: int, warm: Path | None) -> Phase:
    env = child_env(uri, WORK / "ingest-var")
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, capture_output=True)

    def command(source: Path) -> list[str]:
        return [
            sys.executable, "-m", "app.cli", "ingest", str(source),
            "--rejects", str(WORK / "ingest.rejects.jsonl"), "--batch-size", str(batch), "--workers", str(workers),
        ]  # fmt: skip

    if warm is not None:
        subprocess.run(command(warm), env=env, check=True, capture_output=True)
        asyncio.run(wipe(uri, schema=False))
    neo4j_before = process_cpu_s(neo4j_pid(uri))
    started = time.perf_counter()
    child = subprocess.Popen(command(path), env=env, stdout=subprocess.PIPE, text=True)  # stderr: its progress lines
    assert child.stdout is not None
    summary = child.stdout.read()
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    neo4j_cpu = _cpu_since(neo4j_before, process_cpu_s(neo4j_pid(uri)))
    child.returncode = os.waitstatus_to_exitcode(status)
    print(summary, end="", flush=True)
    if child.returncode != 0:
        raise SystemExit(f"idgraph ingest exited with status {child.returncode}")
    return Phase(seconds, count / seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, neo4j_cpu, summary)


def _cpu_since(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


async def timed_load(
    uri: str,
    driver: AsyncDriver,
    path: Path,
    count: int,
    batch: int,
    workers: int,
    statement: LiteralString,
    params: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> Phase:
    """statement_load, with the CPU this process and the scratch Neo4j spent on it."""
    neo4j_before, cpu_before = process_cpu_s(neo4j_pid(uri)), time.process_time()
    seconds = await statement_load(driver, path, batch, workers, statement, params)
    cpu = time.process_time() - cpu_before
    return Phase(seconds, count / seconds, None, cpu, _cpu_since(neo4j_before, process_cpu_s(neo4j_pid(uri))))


async def run_baseline(uri: str, path: Path, count: int, batch: int, workers: int, warm: Path | None) -> Phase:
    async def plain_indexes(driver: AsyncDriver) -> None:
        for statement in BASELINE_INDEXES:
            await driver.execute_query(statement)
        await driver.execute_query("CALL db.awaitIndexes(300)")

    return await run_statement(uri, path, count, batch, workers, warm, BASELINE, raw_params, plain_indexes)


async def run_floor(uri: str, path: Path, count: int, batch: int, workers: int, warm: Path | None) -> Phase:
    async def idgraph_schema(driver: AsyncDriver) -> None:
        await migrated(uri)

    return await run_statement(uri, path, count, batch, workers, warm, FLOOR, floor_params, idgraph_schema)


async def run_statement(
    uri: str,
    path: Path,
    count: int,
    batch: int,
    workers: int,
    warm: Path | None,
    statement: LiteralString,
    params: Callable[[list[dict[str, Any]]], dict[str, Any]],
    schema: Callable[[AsyncDriver], Awaitable[None]],
) -> Phase:
    """One phase loaded by `statement`: the schema, the warm-up load (then deleted), the timed load and its CPU."""
    driver = AsyncGraphDatabase.driver(uri)
    try:
        await schema(driver)
        if warm is not None:
            await statement_load(driver, warm, batch, workers, statement, params)
            await wipe(uri, schema=False)
        return await timed_load(uri, driver, path, count, batch, workers, statement, params)
    finally:
        await driver.close()


def raw_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": rows}


def floor_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows in (source, source_id) order, and each distinct raw (key, value) in sorted order with the positions
    of the rows that hold it: the parameters' shape of idgraph's write statement, without its normalization."""
    rows = sorted(rows, key=lambda r: (r["source"], r["source_id"]))
    holders: dict[tuple[str, str], list[list[Any]]] = {}
    for position, row in enumerate(rows):
        for identity in row["identities"]:
            holders.setdefault((identity["key"], identity["value"]), []).append([position, identity["value"]])
    identities = [{"key": k, "value": v, "holders": holders[(k, v)]} for k, v in sorted(holders)]
    return {"rows": rows, "identities": identities}


async def statement_load(
    driver: AsyncDriver,
    path: Path,
    batch: int,
    workers: int,
    statement: LiteralString,
    params: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> float:
    """Load a JSON Lines file with one statement per batch of rows, `workers` batches at a time (each a managed
    transaction: the driver retries a deadlock); returns the seconds it took."""
    now = datetime.now(UTC)
    queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=workers)

    async def writer() -> None:
        while (rows := await queue.get()) is not None:
            await driver.execute_query(statement, params(rows), now=now)

    started = time.perf_counter()
    writers = [asyncio.create_task(writer()) for _ in range(workers)]
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "source": record["source"],
                    "source_id": record.get("source_id"),
                    "attributes": {f"attr.{k}": v for k, v in record.get("attributes", {}).items()},
                    "identities": record.get("identities", []),
                }
            )
            if len(rows) == batch:
                await queue.put(rows)
                rows = []
    if rows:
        await queue.put(rows)
    for _ in writers:
        await queue.put(None)
    await asyncio.gather(*writers)
    return time.perf_counter() - started


async def wipe(uri: str, *, schema: bool = True) -> None:
    """Delete the data (not the migration ledger) in batches; with `schema`, every constraint and index too."""
    driver = AsyncGraphDatabase.driver(uri)
    try:
        async with driver.session() as session:
            result = await session.run(
                "MATCH (n) WHERE NOT n:SchemaMigration CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
            )
            await result.consume()
        if not schema:
            return
        await driver.execute_query("MATCH (m:SchemaMigration) DELETE m")
        found, _, _ = await driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name")
        for row in found:
            await driver.execute_query(f"DROP CONSTRAINT `{row['name']}` IF EXISTS")
        found, _, _ = await driver.execute_query("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name")
        for row in found:
            await driver.execute_query(f"DROP INDEX `{row['name']}` IF EXISTS")
    finally:
        await driver.close()


def _figures(phase: Phase, count: int) -> list[str]:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    both = None if phase.cpu_s is None or phase.neo4j_cpu_s is None else phase.cpu_s + phase.neo4j_cpu_s
    return [
        f"{phase.seconds:,.1f}",
        f"{phase.rate:,.0f}",
        "-" if phase.peak_rss_mb is None else f"{phase.peak_rss_mb:,.0f}",
        seconds(phase.cpu_s),
        seconds(phase.neo4j_cpu_s),
        "-" if both is None else f"{both / count * 1e6:,.0f}",
        "-" if both is None else f"{both / (phase.seconds * (os.cpu_count() or 1)):.0%}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--warmup", type=int, default=5000, help="records loaded (then deleted) before each timed load (5000)"
    )
    parser.add_argument("--keep-file", action="store_true", help="keep the generated file under var/bench/")
    args = parser.parse_args()
    path = WORK / f"ingest-{args.records}.jsonl"
    print(f"generating {args.records:,} records into {path.relative_to(REPO_ROOT)}...", flush=True)
    size = generate(path, args.records)
    warm = WORK / "ingest-warmup.jsonl" if args.warmup else None
    if warm is not None:
        generate(warm, args.warmup, seed=99)
    shared = bool(os.environ.get("BENCH_NEO4J_URI"))
    load_at_start = os.getloadavg()[0]
    try:
        with scratch_database("ingest") as uri:
            if shared:
                asyncio.run(wipe(uri))
            print(f"idgraph ingest of {size / 2**20:,.0f} MB...", flush=True)
            ingest = run_ingest(uri, path, args.records, args.batch_size, args.workers, warm)
        with scratch_database("ingest-baseline") as uri:
            if shared:
                asyncio.run(wipe(uri))
            print("raw UNWIND ... CREATE baseline of the same rows...", flush=True)
            baseline = asyncio.run(run_baseline(uri, path, args.records, args.batch_size, args.workers, warm))
        with scratch_database("ingest-floor") as uri:
            if shared:
                asyncio.run(wipe(uri))
            print("idempotent floor (MERGE only, idgraph's schema) of the same rows...", flush=True)
            floor = asyncio.run(run_floor(uri, path, args.records, args.batch_size, args.workers, warm))
    finally:
        if not args.keep_file:
            path.unlink(missing_ok=True)
        if warm is not None:
            warm.unlink(missing_ok=True)
    phases = [
        ("`idgraph ingest` (child process)", ingest),
        ("idempotent floor: `UNWIND ... MERGE`, raw values", floor),
        ("raw `UNWIND ... CREATE`", baseline),
    ]
    rows = [[name, *_figures(phase, args.records)] for name, phase in phases]
    ratio = ingest.rate / baseline.rate
    body = (
        f"{args.records:,} generated records ({size / 2**20:,.0f} MB of JSON Lines), batches of {args.batch_size:,}, "
        f"{args.workers} writer(s) in every phase, each phase on a fresh scratch Neo4j warmed up by loading (then "
        f"deleting) {args.warmup:,} other records. Load average (1 min) at "
        f"the start: {load_at_start:.1f}, at the end: {os.getloadavg()[0]:.1f}.\n\n"
        + table(
            rows,
            [
                "load",
                "seconds",
                "records/s",
                "peak RSS MB",
                "CPU s, loading process",
                "CPU s, Neo4j",
                "CPU us per record, both",
                "of the machine's CPU",
            ],
        )
        + f"\n\nidgraph ingest / raw baseline: **{ratio:.2f}x** (targets: at least 10,000 records/s and at least 0.5x)."
        + f" Idempotent floor / raw baseline: {floor.rate / baseline.rate:.2f}x; idgraph ingest / idempotent floor: "
        f"{ingest.rate / floor.rate:.2f}x."
        + "\n\nSummary printed by `idgraph ingest`:\n\n```\n"
        + ingest.summary.strip()
        + "\n```\n"
    )
    print(body)
    command = f".venv/bin/python -m bench.ingest --records {args.records}"
    if (args.batch_size, args.workers) != (1000, 2):
        command += f" --batch-size {args.batch_size} --workers {args.workers}"
    write_section("ingest", "Bulk ingestion throughput", command, body)
    record_targets(
        "ingest",
        command,
        [
            Target("`idgraph ingest` records/s", ">= 10,000", f"{ingest.rate:,.0f}", ingest.rate >= 10_000),
            Target("`idgraph ingest` / raw `UNWIND ... CREATE`", ">= 0.5x", f"{ratio:.2f}x", ratio >= 0.5),
        ],
    )


if __name__ == "__main__":
    main()
