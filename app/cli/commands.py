"""The idgraph subcommands that work on the data: ingest, demo, export, resolve, erase, purge, renormalize."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.config import Settings
from app.errors import InvalidInput
from app.jsonshape import export_json, plan_json, receipt_json, resolution_json

if TYPE_CHECKING:
    from app.bulk.mappings import FieldMapping


from app.cli.engine import bulk_inputs, engine, positive, print_json


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    paths, mapping, rejects = bulk_inputs(args, settings)
    try:
        return asyncio.run(_load(settings, paths, mapping, rejects, args.batch_size, args.workers))
    except OSError as exc:  # an input or the rejects file could not be read or written
        raise InvalidInput(f"{exc.filename or 'file'}: {exc.strerror or exc}") from exc


async def _load(
    settings: Settings,
    paths: list[Path],
    mapping: FieldMapping | None,
    rejects_path: Path,
    batch_size: int,
    workers: int,
) -> int:
    from app.bulk.ingest import RejectsFile, ingest, summary
    from app.bulk.progress import Progress

    async with engine(settings, "write") as (service, _):
        progress = Progress(sys.stderr, sum(p.stat().st_size for p in paths))
        rejects = RejectsFile(rejects_path)
        report = await ingest(
            service, paths, mapping=mapping, rejects=rejects, progress=progress, batch_size=batch_size, workers=workers
        )
    for line in summary(report):
        print(line)
    if report.failure is not None:
        print(
            f"idgraph ingest: stopped: {report.failure.message}. Records already stored stay stored; run the same "
            "command again to finish (it does not duplicate them).",
            file=sys.stderr,
        )
        return 2
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.bulk.ingest import RejectsFile, demo_file, ingest, summary
    from app.bulk.progress import Progress

    async def run() -> int:
        async with engine(settings, "write") as (service, maintenance):
            if await maintenance.holds_profiles():
                print("the database already holds profiles; the demo data set was not loaded")
                return 0
            path = demo_file()
            report = await ingest(
                service,
                [path],
                mapping=None,
                rejects=RejectsFile(settings.var_dir / "demo.rejects.jsonl"),
                progress=Progress(None, 0),
            )
        for line in summary(report):
            print(line)
        if report.failure is not None:
            print(f"idgraph demo: stopped: {report.failure.message}", file=sys.stderr)
            return 2
        print("demo data loaded; try:  idgraph resolve phone_number=+14155552671")
        return 0

    return asyncio.run(run())


def _export(args: argparse.Namespace, settings: Settings) -> int:
    async def run(out: TextIO) -> int:
        count = 0
        async with engine(settings) as (service, _):
            async for row in service.export_rows(page_size=args.page_size):
                out.write(json.dumps(export_json(row), ensure_ascii=False) + "\n")
                count += 1
        return count

    if args.out in (None, "-"):
        asyncio.run(run(sys.stdout))
        sys.stdout.flush()
        return 0
    target = Path(args.out)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = asyncio.run(run(out))
        partial.replace(target)
    except OSError as exc:
        raise InvalidInput(f"--out: {exc.filename or target}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    print(f"exported {count:,} profiles to {target}", file=sys.stderr)
    return 0


RESOLVE_EXIT = {"FOUND": 0, "NOT_FOUND": 3, "AMBIGUOUS": 4}


def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    pairs: list[tuple[str, str]] = []
    for item in args.identities:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"identities are given as KEY=VALUE, e.g. phone_number=+14155552671 (got {key!r}...)")
        pairs.append((key.strip(), value))

    async def run() -> int:
        async with engine(settings) as (service, _):
            resolution = await service.resolve(pairs)
        print_json(resolution_json(resolution))
        return RESOLVE_EXIT[str(resolution.status)]

    return asyncio.run(run())


def _erase(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> int:
        async with engine(settings, "read" if args.dry_run else "write") as (service, _):
            whole = not args.profile_only
            if args.dry_run:
                previous = await service.erasure_receipt(args.request_id)
                if previous is not None:
                    print_json({"dry_run": True, "already_done": receipt_json(previous)})
                    return 0
                plan = await service.erasure_plan(args.profile, whole_customer=whole)
                print_json({"dry_run": True, **plan_json(plan)})
                return 0
            receipt = await service.erase(
                args.profile, request_id=args.request_id, reason=args.reason, actor=args.actor, whole_customer=whole
            )
        print_json(receipt_json(receipt))
        return 0

    return asyncio.run(run())


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from app.bulk.purge import purge

    if args.status:
        if args.inactive_days is not None or args.dry_run:
            raise InvalidInput("--status only reads: give it without --inactive-days and --dry-run")
        return asyncio.run(_purge_status(settings, as_json=args.json))
    if args.json:
        raise InvalidInput("--json goes with --status")
    if args.inactive_days is None:
        raise InvalidInput("--inactive-days N is required (or --status, to see the automatic runs)")
    if args.inactive_days < 1:
        raise InvalidInput("--inactive-days must be at least 1")

    async def run() -> int:
        async with engine(settings, "read" if args.dry_run else "write") as (service, maintenance):
            report = await purge(
                service,
                maintenance,
                inactive_days=args.inactive_days,
                now=datetime.now(UTC),
                dry_run=args.dry_run,
                on_candidate=print if args.dry_run else lambda _: None,
            )
        cutoff = report.cutoff.isoformat(timespec="seconds")
        if report.dry_run:
            print(
                f"dry run: {report.candidates:,} profiles not updated since {cutoff} would be erased", file=sys.stderr
            )
            return 0
        print(
            f"purged {report.profiles_deleted:,} of {report.candidates:,} profiles not updated since {cutoff}: "
            f"{report.identities_deleted:,} identities deleted, {report.already_done:,} already done"
        )
        for code, count in sorted(report.failed.items()):
            print(f"  failed ({code}): {count:,}")
        return 1 if report.failed else 0

    return asyncio.run(run())


async def _purge_status(settings: Settings, *, as_json: bool) -> int:
    """The lease and the last automatic retention runs: counts, times and replica ids, no personal data."""
    from app.cli.retention_status import lease_line, run_lines, status_json
    from app.db.driver import create_driver
    from app.db.retention import RetentionRepository

    driver = create_driver(settings)
    try:
        store = RetentionRepository(driver, database=settings.neo4j_database, timeout_s=settings.query_timeout_s)
        lease, runs = await store.lease(), await store.runs(limit=10)
    finally:
        await driver.close()
    now = datetime.now(UTC)
    if as_json:
        print_json(status_json(lease, runs, now))
        return 0
    print(lease_line(lease, now))
    for line in run_lines(runs):
        print(line)
    return 0


def _renormalize(args: argparse.Namespace, settings: Settings) -> int:
    from app.bulk.progress import Progress
    from app.bulk.renormalize import renormalize, renormalize_summary

    async def run() -> int:
        async with engine(settings, "read" if args.dry_run else "write") as (service, maintenance):
            progress = Progress(sys.stderr, 0, label="renormalize", unit="identities")
            report = await renormalize(
                maintenance,
                service.strategy,
                erasure_key=maintenance.erasure_key or settings.erasure_key(),
                now=datetime.now(UTC),
                dry_run=args.dry_run,
                on_page=lambda r: progress.update(r.identities_checked, 0),
            )
            progress.finish()
        for line in renormalize_summary(report):
            print(line)
        return 0

    return asyncio.run(run())


def add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the data subcommands on the `idgraph` parser's subparsers."""
    ingest = commands.add_parser(
        "ingest",
        help="load profiles from JSON Lines or CSV files",
        description="Load profiles from JSON Lines files (.jsonl, .ndjson: one ProfileInput per line, in snake_case) "
        "or CSV files (.csv) through a field mapping. Re-running a file changes nothing: upserts are idempotent on "
        "(source, source_id), so an interrupted run is finished by running it again. Lines that cannot be used go "
        "to the rejects file (replaced on every run) with their line number and reason. Exit status 0 when every "
        "line was stored or rejected, 2 on an operational failure (e.g. the database is down).",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument(
        "--mapping", metavar="NAME|PATH", help="CSV field mapping: salesforce, dynamics, or a TOML mapping file"
    )
    ingest.add_argument("--rejects", metavar="PATH", help="rejects file (default: <first file>.rejects.jsonl)")
    ingest.add_argument("--batch-size", type=positive, default=1000, metavar="N", help="records per write (1000)")
    ingest.add_argument("--workers", type=positive, default=2, metavar="N", help="batches in flight (2)")
    ingest.set_defaults(run=_ingest)

    demo = commands.add_parser(
        "demo",
        help="load the demo data set into an empty database",
        description="Load the packaged demo data set (a few hundred profiles across crm, ivr, webchat and email, "
        "including the reference customer +14155552671 / john.doe@example.com / ACCT-98765) when the database "
        "holds no profile; otherwise say so and do nothing.",
    )
    demo.set_defaults(run=_demo)

    export = commands.add_parser(
        "export",
        help="write every profile with its customer id as JSON Lines",
        description="Write one JSON object per profile, in profile id order: profile_id, source, source_id, "
        "customer_id (the id of the oldest profile, by created_at then id, of its customer: the profiles its "
        "shared identities and merges connect). Customers are whole: one larger than IDGRAPH_MAX_COMPONENT_NODES, "
        "which resolve reads only in part, still gets one customer_id, the oldest of all its profiles. Streams: "
        "two passes over the profiles, page by page (what links them, then the rows), in one read transaction; "
        "Neo4j reads at read-committed isolation, so a graph that changes during the export may give a mix of "
        "before and after.",
    )
    export.add_argument("--out", metavar="PATH", help="output file (default: stdout); written whole or not at all")
    export.add_argument("--page-size", type=positive, default=5000, help=argparse.SUPPRESS)
    export.set_defaults(run=_export)

    resolve = commands.add_parser(
        "resolve",
        help="who is this? print the resolution as JSON",
        description="Resolve identities (e.g. phone_number=+14155552671 email_address=john.doe@example.com) and print "
        "the resolution as JSON. Never writes. Exit status: 0 FOUND, 3 NOT_FOUND, 4 AMBIGUOUS, 2 on an error.",
    )
    resolve.add_argument("identities", nargs="+", metavar="KEY=VALUE")
    resolve.set_defaults(run=_resolve)

    erase = commands.add_parser(
        "erase",
        help="erase a customer (cascade delete, receipt, suppression)",
        description="Erase the customer of a profile: every profile of it, the identities no other profile holds, "
        "the merge edges; keep a receipt without personal data and add keyed hashes of the erased values, source "
        "records and profile ids to the suppression list. Idempotent on --request-id for the same profile; the same "
        "request id for another profile is refused (CONFLICT). Ids starting with webhook: are the CRM webhook's. "
        "--dry-run prints what would be deleted.",
    )
    erase.add_argument("--profile", required=True, metavar="ID")
    erase.add_argument("--request-id", required=True, metavar="ID")
    erase.add_argument("--reason", required=True, metavar="TEXT")
    erase.add_argument("--actor", default="cli", help="who asked (kept on the receipt; default 'cli')")
    erase.add_argument("--profile-only", action="store_true", help="erase only this profile, not its whole customer")
    erase.add_argument("--dry-run", action="store_true")
    erase.set_defaults(run=_erase)

    purge = commands.add_parser(
        "purge",
        help="retention: erase profiles not updated for N days; --status shows the automatic runs",
        description="Erase, one profile at a time, every profile not updated for N days, with the identities no "
        "remaining profile holds; each erasure leaves a receipt without personal data. A retention purge is not "
        "an opt-out: nothing is added to the suppression list, so the same person or source record may be "
        "written again later. Recent profiles of the same customer stay. Request ids are "
        "purge:<date>:<profile_id>, so a re-run the same day repeats nothing. --dry-run prints the profile ids. "
        "--status prints the retention lease and the last 10 automatic runs of `idgraph serve` (strategy "
        "[retention]): times, counts and replica ids, no personal data.",
    )
    purge.add_argument("--inactive-days", type=int, metavar="N", help="required unless --status")
    purge.add_argument("--dry-run", action="store_true")
    purge.add_argument("--status", action="store_true", help="show the last automatic retention runs and the lease")
    purge.add_argument("--json", action="store_true", help="with --status: print one JSON object")
    purge.set_defaults(run=_purge)

    renorm = commands.add_parser(
        "renormalize",
        help="re-apply the strategy to every stored identity",
        description="Re-normalize every stored identity with the current strategy, in bounded batches (one "
        "transaction each). A value that is not the normalized form of itself is folded onto the node of its "
        "normalized value, keeping every profile's edge and the raw values; values no longer valid are reported "
        "and kept; newly blocked values stop linking; the fan-out limit applies. --dry-run writes nothing.",
    )
    renorm.add_argument("--dry-run", action="store_true")
    renorm.set_defaults(run=_renormalize)
