"""`idgraph import` throughput: a generated JSON Lines file loaded into an empty scratch neo4j-local, from the file
to a ready, serving database, against the issue's target (at least 10,000 records/s at 1M records).

    .venv/bin/python -m bench.import_load --records 1000000            # the issue's figure
    .venv/bin/python -m bench.import_load --records 375000 --export    # then `idgraph export`, timed too
    .venv/bin/python -m bench.import_load --records 375000 --export --splink   # and Splink on the same file

The file comes from bench/datagen.py, written as bench.ingest writes it (the same generator and seed). `idgraph
import FILE` runs as a child process, as an operator runs it, against a neo4j-local of this benchmark's own laid out
as `idgraph db up` lays it out ($IDGRAPH_VAR_DIR/neo4j, so the command may stop and start it), started empty (not
even migrated). The clock runs from the command's start until the database it leaves answers: the command returns
once the imported database is started and migrated; then a count of the profiles and an index lookup of one
identity through its constraint, both answered, end the timed span ("ready"). How long the schema's one
non-constraint index (profile_updated_at, populated in the background) takes to come online after that is
reported beside it, not counted.

Per stage, the seconds are parsed from the command's summary line (normalize, write files, import, start,
schema), each also as records/s (the records over that stage's seconds alone). CPU: the command's own from the
kernel's accounting of the child (wait4: the command, its normalizing workers and neo4j-admin, which it waits for);
a sampler reads /proc every 0.5 s to split that between the main process, the workers and neo4j-admin, and to
read the CPU of the Neo4j servers (the one started empty, stopped by the import; the one the import starts, read
once more when the database is ready). With --export, `idgraph export --out FILE` runs next, as a child process,
and the total of both is reported. With --splink (needs `pip install -e '.[bench]'`), bench/splink_link.py
links the same file with Splink 5 on DuckDB in the same run, and the clusters are compared record by record with
the export's customers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import LiteralString

from neo4j import AsyncGraphDatabase

from app.config import REPO_ROOT
from app.db import localserver
from bench import splink_link
from bench.harness import (
    WORK,
    Target,
    child_env,
    free_port,
    process_cpu_s,
    record_targets,
    table,
    write_section,
)
from bench.ingest import generate

TARGET_RATE = 10_000  # records/s, file to a ready database, at 1M records (issue 17)
ISSUE_RECORDS = 1_000_000
SPLINK_TARGET = 3.0  # import + export at most 3x Splink's linkage of the same file (issue 17)


def splink_version() -> str:
    from importlib.metadata import version

    return version("splink")


def contested_rule() -> bool:
    """Whether the packaged strategy keeps contested identities apart (issue 19): Splink's side applies it too."""
    from app.domain.strategy import default_strategy

    return bool(getattr(default_strategy().protections, "contested_identities", False))


VAR = WORK / "import-var"  # the command's IDGRAPH_VAR_DIR: the scratch server's home is VAR/neo4j
SAMPLE_S = 0.5

COUNT: LiteralString = "MATCH (p:Profile) RETURN count(p) AS profiles"
LOOKUP: LiteralString = """
MATCH (any:Identity) WITH any LIMIT 1
MATCH (i:Identity {key: any.key, value: any.value})
OPTIONAL MATCH (i)<-[:HAS_IDENTITY]-(p:Profile)
RETURN i.key AS key, count(p) AS profiles
"""
INDEXES: LiteralString = "SHOW INDEXES YIELD name, state WHERE state <> 'ONLINE' RETURN name, state"


@contextlib.contextmanager
def empty_server() -> Iterator[localserver.LocalServer]:
    """A fresh neo4j-local at VAR/neo4j on a free port, as `idgraph db up` would start it (neo4j-local's default
    heap and page cache: the command starts it again with those); stopped and deleted at the end."""
    server = localserver.LocalServer(home=VAR / "neo4j", port=free_port())
    localserver.stop(server)
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    localserver.start(server, say=lambda m: print(m, flush=True))
    try:
        yield server
    finally:
        localserver.stop(server)  # the server the import started (the pid file names it)
        shutil.rmtree(VAR, ignore_errors=True)


@dataclass
class Sampler:
    """Reads /proc every SAMPLE_S seconds: the last CPU seen of each process under `root`, and of `extra` pids."""

    root: int
    extra: set[int] = field(default_factory=set)
    cpu: dict[int, float] = field(default_factory=dict)
    kind: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.sample()

    def sample(self) -> None:
        for pid in self._tree() | self.extra:
            used = process_cpu_s(pid)
            if used is not None:
                self.cpu[pid] = max(used, self.cpu.get(pid, 0.0))
                self.kind.setdefault(pid, _kind(pid, self.root))

    def _tree(self) -> set[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
        found, frontier = {self.root}, [self.root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
            found.update(children)
            frontier.extend(children)
        return found

    def stop(self) -> None:
        self._stop.set()

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for pid, used in self.cpu.items():
            totals[self.kind[pid]] = totals.get(self.kind[pid], 0.0) + used
        return totals


def _kind(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    text = b" ".join(words)
    if b"org.neo4j.cli.AdminTool" in text:
        return "neo4j-admin"
    if localserver.MAIN_CLASS.encode() in text:
        return "neo4j"
    if b"multiprocessing" in text:
        return "workers"
    return "other"


@dataclass(frozen=True)
class Loaded:
    seconds: float  # the command's start to the ready database (count and lookup answered)
    command_s: float  # the command's start to its exit
    cpu_s: float  # the command and what it waited for (wait4)
    peak_rss_mb: float
    split: dict[str, float]  # sampled CPU seconds by process kind
    neo4j_cpu_s: float | None  # both servers: the empty one (until stopped) and the imported one (until ready)
    stages: dict[str, float]
    summary: str
    profiles: int
    index_online_s: float  # after ready, until every index is ONLINE
    export_s: float | None = None
    export_cpu_s: float | None = None
    exported: int = 0
    splink: splink_link.Linkage | None = None
    agreement: splink_link.Agreement | None = None


STAGE = re.compile(r"(\w[\w ]*?) [\d:]+ \((\d+(?:\.\d+)?)s\)")


def stages(summary: str) -> dict[str, float]:
    """The stage seconds of the command's summary line `  stages: normalize 0:41 (41.2s), write files ...`."""
    for line in summary.splitlines():
        if line.strip().startswith("stages:"):
            return {name: float(s) for name, s in STAGE.findall(line.split(":", 1)[1])}
    raise SystemExit(f"idgraph import printed no stages line:\n{summary}")


async def ready(uri: str, deadline_s: float = 600.0) -> tuple[int, float, float]:
    """Asks the database for a profile count and an identity lookup through its constraint; returns the count, when
    (time.perf_counter) both were answered, and the seconds after that until every index is ONLINE."""
    driver = AsyncGraphDatabase.driver(uri)
    try:
        count, _, _ = await driver.execute_query(COUNT, routing_="r")
        found, _, _ = await driver.execute_query(LOOKUP, routing_="r")
        if not found or found[0]["profiles"] < 1:
            raise SystemExit("the imported database answered no identity lookup")
        answered = time.perf_counter()
        while (await driver.execute_query(INDEXES, routing_="r"))[0]:
            if time.perf_counter() - answered > deadline_s:
                raise SystemExit(f"indexes still populating after {deadline_s:g} s")
            await asyncio.sleep(0.2)
        return int(count[0]["profiles"]), answered, time.perf_counter() - answered
    finally:
        await driver.close()


def run_import(server: localserver.LocalServer, path: Path, workers: int) -> Loaded:
    env = child_env(server.uri, VAR)
    old_server = server.pid()
    neo4j_before = process_cpu_s(old_server)
    command = [
        sys.executable, "-m", "app.cli", "import", str(path), "--rejects", str(WORK / "import.rejects.jsonl"),
        "--workers", str(workers),
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)  # stderr: progress
    sampler = Sampler(child.pid, {old_server} if old_server is not None else set())
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    assert child.stdout is not None
    summary = child.stdout.read()
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    command_s = time.perf_counter() - started
    sampler.stop()
    thread.join()
    code = os.waitstatus_to_exitcode(status)
    print(summary, end="", flush=True)
    if code != 0:
        raise SystemExit(f"idgraph import exited with status {code}")
    profiles, answered, index_online_s = asyncio.run(ready(server.uri))
    seconds = answered - started
    new_server = server.pid()
    if new_server is not None:
        sampler.extra.add(new_server)
    sampler.sample()  # the imported server's CPU until ready (plus the index wait, a fraction of a second)
    split = sampler.by_kind()
    neo4j = None
    if neo4j_before is not None and "neo4j" in split:
        neo4j = split["neo4j"] - neo4j_before
    return Loaded(
        seconds, command_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, split, neo4j, stages(summary),
        summary, profiles, index_online_s,
    )  # fmt: skip


EXPORT = WORK / "import-export.jsonl"


def run_export(server: localserver.LocalServer, *, keep: bool = False) -> tuple[float, float, int]:
    """`idgraph export --out FILE` as a child process: seconds, CPU (wait4), lines written (the file is kept at
    EXPORT with `keep`)."""
    out = EXPORT
    command = [sys.executable, "-m", "app.cli", "export", "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=child_env(server.uri, VAR), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("idgraph export failed")
    with out.open("rb") as lines:
        count = sum(1 for _ in lines)
    if not keep:
        out.unlink()
    return seconds, usage.ru_utime + usage.ru_stime, count


def report(args: argparse.Namespace, size: int, run: Loaded, load_at_start: float) -> str:
    n = args.records
    cores = os.cpu_count() or 1
    rate = n / run.seconds
    stage_rows = [[name, f"{s:,.1f}", f"{n / s:,.0f}" if s else "-"] for name, s in run.stages.items()]
    outside = run.seconds - sum(run.stages.values())
    stage_rows.append(["outside the stages (start-up, checks, ready)", f"{outside:,.1f}", "-"])
    stage_rows.append(["**file to a ready database**", f"**{run.seconds:,.1f}**", f"**{rate:,.0f}**"])
    split = run.split
    cpu_rows = [
        ["`idgraph import` and what it waited for (wait4)", f"{run.cpu_s:,.1f}", f"{run.cpu_s / n * 1e6:,.0f}"],
        *[
            [f"  sampled: {label}", f"{split[kind]:,.1f}", f"{split[kind] / n * 1e6:,.0f}"]
            for kind, label in (
                ("main", "the command's main process"),
                ("workers", "normalizing workers"),
                ("neo4j-admin", "neo4j-admin database import"),
            )
            if kind in split
        ],
        [
            "Neo4j servers (the empty one until stopped, the imported one until ready)",
            "-" if run.neo4j_cpu_s is None else f"{run.neo4j_cpu_s:,.1f}",
            "-" if run.neo4j_cpu_s is None else f"{run.neo4j_cpu_s / n * 1e6:,.0f}",
        ],
    ]
    both = run.cpu_s + (run.neo4j_cpu_s or 0.0)
    verdict = "met" if rate >= TARGET_RATE else "missed"
    scale = "" if n == ISSUE_RECORDS else f" (the target is set at {ISSUE_RECORDS:,} records; this run has {n:,})"
    body = (
        f"{n:,} generated records ({size / 2**20:,.0f} MB of JSON Lines, bench/datagen.py as bench.ingest), `idgraph "
        f"import FILE --workers {args.workers}` as a child process into an empty scratch neo4j-local (default heap "
        f"and page cache), timed from the command's start until the database it leaves answered a profile count "
        f"({run.profiles:,} profiles) and an identity lookup. The command itself returned after "
        f"{run.command_s:,.1f} s; the background index (profile_updated_at) was online {run.index_online_s:,.1f} s "
        f"after ready (not counted). Load average (1 min) at the start: {load_at_start:.1f}, at the end: "
        f"{os.getloadavg()[0]:.1f}.\n\n"
        + table(stage_rows, ["stage (from the command's summary)", "seconds", "records/s, this stage alone"])
        + "\n\n"
        + table(cpu_rows, ["CPU", "seconds", "us per record"])
        + f"\n\nThe command's peak RSS (its largest process): {run.peak_rss_mb:,.0f} MB. CPU of the command and "
        f"Neo4j together: {both:,.1f} s, {both / (run.seconds * cores):.0%} of the machine's {cores} cores over "
        f"the run. Sampled figures are read every {SAMPLE_S:g} s from /proc and may miss the last half second of a "
        "process.\n\n"
        f"`idgraph import`, file to a ready database: **{rate:,.0f} records/s** against the target of "
        f"{TARGET_RATE:,} records/s: **{verdict}**{scale}."
    )
    if run.export_s is not None:
        body += (
            f"\n\nThen `idgraph export --out FILE` (child process): {run.exported:,} profiles in {run.export_s:,.1f} s "
            f"({run.exported / run.export_s:,.0f} profiles/s, CPU {run.export_cpu_s or 0:,.1f} s). Import (file to "
            f"ready) plus export: **{run.seconds + run.export_s:,.1f} s**."
        )
    if run.splink is not None and run.agreement is not None and run.export_s is not None:
        both_s = run.seconds + run.export_s
        ratio = both_s / run.splink.seconds
        agreement = run.agreement
        same = (
            "the same clusters"
            if agreement.same
            else f"clusters differing for {agreement.differing_records:,} of {agreement.compared:,} records"
        )
        body += (
            f"\n\nSplink {splink_version()} (DuckDB), deterministic linkage of the same file in the same run "
            f"(bench/splink_link.py: normalize in {args.workers} processes, then link on equal values and cluster): "
            f"{run.splink.seconds:,.1f} s ({run.splink.normalize_s:,.1f} s normalizing, {run.splink.link_s:,.1f} s in "
            f"DuckDB and Splink), {run.splink.records:,} records. Import plus export / Splink: **{ratio:.2f}x** "
            f"(target: at most {SPLINK_TARGET:g}x: **{'met' if ratio <= SPLINK_TARGET else 'missed'}**); {same}."
        )
    return body + "\n\nSummary printed by `idgraph import`:\n\n```\n" + run.summary.strip() + "\n```\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=ISSUE_RECORDS, help="generated records (1000000)")
    parser.add_argument("--workers", type=int, default=2, help="idgraph import --workers (2)")
    parser.add_argument("--export", action="store_true", help="then run `idgraph export` and time it too")
    parser.add_argument("--keep-file", action="store_true", help="keep the generated file under var/bench/")
    parser.add_argument("--splink", action="store_true", help="with --export: Splink on the same file, compared")
    args = parser.parse_args()
    if args.splink and not args.export:
        parser.error("--splink compares with the export: give --export too")
    path = WORK / f"import-{args.records}.jsonl"
    print(f"generating {args.records:,} records into {path.relative_to(REPO_ROOT)}...", flush=True)
    size = generate(path, args.records)
    load_at_start = os.getloadavg()[0]
    try:
        with empty_server() as server:
            print(f"idgraph import of {size / 2**20:,.0f} MB...", flush=True)
            run = run_import(server, path, args.workers)
            if args.export:
                print("idgraph export...", flush=True)
                export_s, export_cpu_s, exported = run_export(server, keep=args.splink)
                run = replace(run, export_s=export_s, export_cpu_s=export_cpu_s, exported=exported)
            if args.splink:
                print("splink on the same file...", flush=True)
                linkage = splink_link.link(path, workers=args.workers, contested=contested_rule())
                run = replace(run, splink=linkage, agreement=splink_link.compare(linkage, EXPORT))
    finally:
        (WORK / "import.rejects.jsonl").unlink(missing_ok=True)
        EXPORT.unlink(missing_ok=True)
        if not args.keep_file:
            path.unlink(missing_ok=True)
    body = report(args, size, run, load_at_start)
    print(body)
    command = f".venv/bin/python -m bench.import_load --records {args.records}"
    if args.workers != 2:
        command += f" --workers {args.workers}"
    if args.export:
        command += " --export"
    if args.splink:
        command += " --splink"
    write_section("import-load", "`idgraph import`: file to a ready database", command, body)
    rate = args.records / run.seconds
    targets = [
        Target(
            f"`idgraph import` of {args.records:,} records, file to a ready database",
            f">= {TARGET_RATE:,} records/s" + ("" if args.records == ISSUE_RECORDS else " (at 1M)"),
            f"{rate:,.0f} records/s",
            rate >= TARGET_RATE,
        )
    ]
    if run.splink is not None and run.export_s is not None:
        ratio = (run.seconds + run.export_s) / run.splink.seconds
        targets.append(
            Target(
                f"`idgraph import` + `idgraph export` of {args.records:,} records / Splink (DuckDB) on the same file",
                f"<= {SPLINK_TARGET:g}x, same clusters",
                f"{ratio:.2f}x, " + ("same clusters" if run.agreement and run.agreement.same else "clusters differ"),
                ratio <= SPLINK_TARGET and bool(run.agreement and run.agreement.same),
            )
        )
    record_targets("import-load", command, targets)


if __name__ == "__main__":
    main()
