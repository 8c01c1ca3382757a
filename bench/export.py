"""`idgraph export` throughput: the streaming export (app/db/export.py) beside the paged export it replaced, on the
same generated graph in the same run, with the two outputs compared as partitions.

    .venv/bin/python -m bench.export --profiles 375000

The graph comes from bench/datagen.py, written by bench/importer.py (Neo4j's offline importer, then the app's
migrations) into a scratch neo4j-local. Both exports run as child processes, as an operator runs them, and write
the same JSON Lines file shape (app.jsonshape.export_json): `idgraph export --out FILE`, and this module with
`--old-to FILE`, which pages through bench/cypher/export_page_v1.cypher (the statement idgraph used before: one
read transaction per page of --page-size profiles in id order, each profile's component walked from it, up to
max_component_nodes + 1 nodes, and its oldest profile taken) exactly as the old Neo4jRepository.export_rows did.
Runs alternate (old, new, old, new, ...) so machine noise hits both alike; each reports wall seconds, profiles/s,
the child's CPU (wait4) and the scratch Neo4j's CPU; not its peak RSS, which a forked child inherits from this
process. The outputs of the last runs must hold the same rows and the same partition of profiles into customers,
else SystemExit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, LiteralString

from app.config import REPO_ROOT, Settings
from app.db.driver import create_driver
from app.domain.model import ExportRow
from app.domain.strategy import default_strategy
from app.jsonshape import export_json
from bench import importer
from bench.datagen import records
from bench.harness import (
    WORK,
    child_env,
    command_line,
    local_server,
    neo4j_pid,
    process_cpu_s,
    scratch_database,
    table,
    write_section,
)

OLD_STATEMENT = REPO_ROOT / "bench" / "cypher" / "export_page_v1.cypher"


def old_statement() -> LiteralString:
    lines = [
        line for line in OLD_STATEMENT.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("//")
    ]
    text: LiteralString = "\n".join(lines).strip()  # type: ignore[assignment,unused-ignore]
    return text


async def old_export(out: Path, page_size: int) -> int:
    """The paged export as idgraph ran it before, against NEO4J_URI, into `out`; returns the profiles written."""
    settings = Settings.from_env()
    driver = create_driver(settings)
    statement = old_statement()
    count = 0
    try:
        with out.open("w", encoding="utf-8") as sink:
            after = ""
            while True:
                rows, _, _ = await driver.execute_query(
                    statement,
                    {"after": after, "limit": page_size, "max_nodes": settings.max_component_nodes},
                    database_=settings.neo4j_database,
                    routing_="r",
                )
                for r in rows:
                    row = ExportRow(r["profile_id"], r["source"] or "", r["source_id"], r["customer_id"])
                    sink.write(json.dumps(export_json(row), ensure_ascii=False) + "\n")
                count += len(rows)
                if len(rows) < page_size:
                    return count
                after = rows[-1]["profile_id"]
    finally:
        await driver.close()


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_s: float
    neo4j_cpu_s: float | None


def timed_child(uri: str, command: list[str]) -> Run:
    """Run `command` against `uri` as a child process; its wall time and CPU (wait4), Neo4j's CPU."""
    env = child_env(uri, WORK / "export-var")
    neo4j_before = process_cpu_s(neo4j_pid(uri))
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    errors = child.stderr.read()
    child.stderr.close()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    neo4j_after = process_cpu_s(neo4j_pid(uri))
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed:\n{errors}")
    neo4j_cpu = neo4j_after - neo4j_before if neo4j_after is not None and neo4j_before is not None else None
    return Run(seconds, usage.ru_utime + usage.ru_stime, neo4j_cpu)


def partition(path: Path) -> tuple[dict[str, tuple[Any, ...]], set[frozenset[str]]]:
    """The rows of an export file by profile id, and its customers as sets of profile ids."""
    rows: dict[str, tuple[Any, ...]] = {}
    customers: dict[str, set[str]] = defaultdict(set)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            rows[row["profile_id"]] = (row["source"], row["source_id"], row["customer_id"])
            customers[row["customer_id"]].add(row["profile_id"])
    return rows, {frozenset(members) for members in customers.values()}


def compare(old: Path, new: Path) -> str:
    """A sentence on how the two outputs agree; SystemExit when they differ in rows or partition."""
    old_rows, old_customers = partition(old)
    new_rows, new_customers = partition(new)
    if old_rows.keys() != new_rows.keys():
        raise SystemExit(f"the exports hold different profiles: {len(old_rows):,} old, {len(new_rows):,} new")
    if old_customers != new_customers:
        raise SystemExit(
            f"the exports differ as partitions: {len(old_customers ^ new_customers):,} customers in one only"
        )
    same_ids = sum(1 for pid, row in old_rows.items() if new_rows[pid] == row)
    sizes = [len(c) for c in new_customers]
    return (
        f"Both outputs hold the same {len(new_rows):,} profiles and the same partition into {len(new_customers):,} "
        f"customers (largest: {max(sizes)} profiles; {sum(1 for s in sizes if s > 1):,} with two or more); "
        f"{same_ids:,} of {len(new_rows):,} lines are identical, customer_id included."
    )


async def loaded_graph(uri: str, size: int) -> None:
    server = local_server(uri)
    if server is None:
        raise SystemExit("bench.export needs a scratch neo4j-local of its own (it loads with the offline importer)")
    print(f"importing {size:,} generated profiles offline...", flush=True)
    loaded = await asyncio.to_thread(importer.load, server, records(size), default_strategy())
    await importer.migrated(uri)
    print(f"  {loaded.profiles:,} profiles in {loaded.seconds:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=375_000, help="generated profiles (375000)")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each export, alternating (2)")
    parser.add_argument("--page-size", type=int, default=5000, help="profiles per page, both exports (5000)")
    parser.add_argument("--old-to", metavar="FILE", help=argparse.SUPPRESS)  # the child: the old export only
    args = parser.parse_args()
    if args.old_to:
        asyncio.run(old_export(Path(args.old_to), args.page_size))
        return
    old_out, new_out = WORK / "export-old.jsonl", WORK / "export-new.jsonl"
    commands: dict[str, list[str]] = {
        "before: paged, a component walk per profile": [
            sys.executable, "-m", "bench.export", "--old-to", str(old_out), "--page-size", str(args.page_size),
        ],
        "after: `idgraph export --out FILE` (streaming)": [
            sys.executable, "-m", "app.cli", "export", "--out", str(new_out), "--page-size", str(args.page_size),
        ],
    }  # fmt: skip
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    load_at_start = os.getloadavg()[0]
    try:
        with scratch_database("export", heap="2g", pagecache_mb=1024, tx_timeout_s=600, reuse_given=False) as uri:
            asyncio.run(loaded_graph(uri, args.profiles))
            for n in range(args.rounds):
                for name, command in commands.items():
                    run = timed_child(uri, command)
                    runs[name].append(run)
                    print(f"  round {n + 1}: {name}: {run.seconds:.1f} s", flush=True)
        agreement = compare(old_out, new_out)
    finally:
        old_out.unlink(missing_ok=True)
        new_out.unlink(missing_ok=True)
    medians = {name: median_run(r) for name, r in runs.items()}
    rows = [
        [
            name,
            f"{run.seconds:.1f}",
            f"{args.profiles / run.seconds:,.0f}",
            f"{run.cpu_s:.1f}",
            "-" if run.neo4j_cpu_s is None else f"{run.neo4j_cpu_s:.1f}",
        ]
        for name, run in medians.items()
    ]
    before, after = medians.values()
    body = (
        f"{args.profiles:,} generated profiles (bench/datagen.py, loaded by bench/importer.py), each export run "
        f"{args.rounds} time(s) as a child process, alternating; medians. Load average (1 min) at the start: "
        f"{load_at_start:.1f}, at the end: {os.getloadavg()[0]:.1f}.\n\n"
        + table(rows, ["export", "seconds", "profiles/s", "CPU s, export process", "CPU s, Neo4j"])
        + f"\n\nStreaming / paged: **{before.seconds / after.seconds:.1f}x** faster. {agreement}\n"
    )
    print(body)
    line = command_line("bench.export", argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "old_to"}))
    write_section("export", "Export throughput: streaming vs paged", line, body)


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (the lower middle one for an even count), with its own figures."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    middle = ordered[(len(ordered) - 1) // 2]
    return replace(middle, seconds=statistics.median(r.seconds for r in ordered))


if __name__ == "__main__":
    main()
