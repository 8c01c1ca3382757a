"""Bulk ingestion: JSON Lines and mapped CSV files, streamed in batches through IdentityService.ingest_batch.

Memory stays flat in the file size: lines are read one at a time and at most `workers` batches are in flight.
Lines that cannot be used go to the rejects file with their line number and a reason code; personal data never
goes to stderr or the log. Re-running a file changes nothing (upserts are idempotent on (source, source_id)).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from app.bulk.mappings import FieldMapping
from app.bulk.progress import Progress
from app.domain.changes import ACTOR_CLI, Audit
from app.domain.model import ProfileInput
from app.domain.strategy import Strategy
from app.domain.textcheck import decoded_is_unicode_text
from app.domain.validation import profile_input_from_record
from app.errors import AppError, InvalidInput, NotFound, Suppressed
from app.services.identity import IdentityService
from app.services.writes import IngestOutcome

CLI_AUDIT = Audit(ACTOR_CLI)  # `idgraph ingest` and the demo load: the change log's actor `cli`

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
DEFAULT_BATCH = 1000
DEFAULT_WORKERS = 2
YIELD_EVERY = 50  # lines read between two turns of the event loop


@dataclass
class Cursor:
    """Bytes read so far, over all input files: drives the progress line and its ETA."""

    bytes: int = 0


@dataclass(frozen=True)
class Line:
    """One record of an input file, read (record) or not (error)."""

    file: str
    number: int  # the line the record starts on, from 1
    original: object  # JSON Lines: the line's text; CSV: the row as {column: cell}. Only for the rejects file.
    record: object = None
    error: tuple[str, str] | None = None  # (reason code, message without personal data)


def read_jsonl(path: Path, cursor: Cursor) -> Iterator[Line]:
    with path.open("rb") as stream:
        for number, chunk in enumerate(stream, 1):
            cursor.bytes += len(chunk)
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                original = chunk.decode("utf-8", errors="replace").rstrip("\r\n")
                yield Line(str(path), number, original, error=("INVALID_ENCODING", f"not UTF-8 (byte {exc.start + 1})"))
                continue
            text = text.removeprefix("\ufeff") if number == 1 else text
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Line(
                    str(path), number, text.rstrip("\r\n"), error=("INVALID_JSON", f"{exc.msg} at column {exc.colno}")
                )
                continue
            except RecursionError:
                yield Line(str(path), number, text.rstrip("\r\n"), error=("INVALID_JSON", "nested too deeply"))
                continue
            if not decoded_is_unicode_text(text, value):
                error = ("INVALID_ENCODING", "a \\ud800-\\udfff escape that is not one of a pair")
                yield Line(str(path), number, text.rstrip("\r\n"), error=error)
                continue
            yield Line(str(path), number, text.rstrip("\r\n"), record=value)


def read_csv(path: Path, mapping: FieldMapping, cursor: Cursor) -> Iterator[Line]:
    """Rows of a CSV export through a field mapping. A quoted cell may span lines; a record's number is the line
    it starts on. Empty rows are skipped; rows with more cells than the header are rejected."""
    bad_lines: set[int] = set()
    physical = 0
    with path.open("rb") as stream:

        def lines() -> Iterator[str]:
            nonlocal physical
            for chunk in stream:
                physical += 1
                cursor.bytes += len(chunk)
                try:
                    yield chunk.decode(mapping.encoding)
                except UnicodeDecodeError:
                    bad_lines.add(physical)
                    yield chunk.decode(mapping.encoding, errors="replace")

        reader = csv.reader(lines(), delimiter=mapping.delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(f"{path}: cannot read the CSV header: {exc}") from None
        mapping.check_header(header, str(path))
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Line(str(path), start, None, error=("INVALID_CSV", str(exc)))
                start = reader.line_num + 1
                bad_lines.clear()
                continue
            number, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                bad_lines.clear()
                continue
            cells = dict(zip(header, row, strict=False))
            if bad_lines:
                bad_lines.clear()
                yield Line(str(path), number, cells, error=("INVALID_ENCODING", f"not {mapping.encoding}"))
            elif len(row) > len(header):
                yield Line(
                    str(path), number, row, error=("INVALID_CSV", f"{len(row)} cells, the header has {len(header)}")
                )
            else:
                yield Line(str(path), number, cells, record=mapping.record(cells))


class RejectsFile:
    """The rejects of one run, one JSON object per line: file, line, reason, message, input. Replaced on every
    run, created only when something is rejected, readable by its owner only (it holds the input's data)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._out: IO[str] | None = None
        path.unlink(missing_ok=True)

    def write(self, line: Line, reason: str, message: str) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._out = os.fdopen(fd, "w", encoding="utf-8")
        entry = {"file": line.file, "line": line.number, "reason": reason, "message": message, "input": line.original}
        self._out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


@dataclass
class IngestReport:
    files: int = 0
    records: int = 0  # records read (blank lines are not records)
    stored: int = 0
    created: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # lines, by reason code
    values_rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (key, reason) in stored records
    without_source_id: int = 0  # stored records with neither source_id nor profile_id: new profiles on every run
    elapsed_s: float = 0.0
    rejects_path: Path | None = None
    failure: AppError | None = None  # an operational failure stopped the run

    @property
    def rate(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


def reason_of(error: AppError) -> str:
    if isinstance(error, Suppressed):
        return "SUPPRESSED"
    if isinstance(error, NotFound):
        return "NOT_FOUND"
    if isinstance(error, InvalidInput):
        return "NOTHING_USABLE"
    return error.code


def check_mapping(mapping: FieldMapping, strategy: Strategy) -> None:
    unknown = [g.key for g in mapping.identities if strategy.attribute(g.key) is None]
    if unknown:
        raise InvalidInput(
            f"mapping '{mapping.name}': {', '.join(unknown)} is not an identity attribute of the strategy "
            f"(it has {', '.join(strategy.keys)})"
        )


def open_inputs(paths: Sequence[Path], mapping: FieldMapping | None, cursor: Cursor) -> Iterator[Line]:
    for path in paths:
        if path.suffix.lower() in CSV_SUFFIXES:
            assert mapping is not None
            yield from read_csv(path, mapping, cursor)
        else:
            yield from read_jsonl(path, cursor)


def check_inputs(paths: Sequence[Path], mapping: FieldMapping | None, rejects: Path) -> None:
    """Refuse before anything is written: a missing file, an unknown extension, a CSV without a mapping."""
    for path in paths:
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix not in JSONL_SUFFIXES + CSV_SUFFIXES:
            raise InvalidInput(f"{path}: unknown file type (JSON Lines: .jsonl or .ndjson; CSV: .csv)")
        if suffix in CSV_SUFFIXES and mapping is None:
            raise InvalidInput(f"{path}: a CSV file needs --mapping (salesforce, dynamics, or a TOML file)")
        if path.resolve() == rejects.resolve():
            raise InvalidInput(f"{path}: the rejects file must not be an input file")
        if suffix in CSV_SUFFIXES and mapping is not None:
            check_csv_header(path, mapping)


def check_csv_header(path: Path, mapping: FieldMapping) -> None:
    """Refuse a CSV file the mapping does not fit before anything is written (read_csv checks it again)."""
    with path.open("rb") as stream:
        first = stream.readline().decode(mapping.encoding, errors="replace")
    if first.strip():
        try:
            header = next(csv.reader([first], delimiter=mapping.delimiter))
        except csv.Error as exc:
            raise InvalidInput(f"{path}: cannot read the CSV header: {exc}") from None
        mapping.check_header([h.strip() for h in header], str(path))


def _conflict_key(item: ProfileInput) -> tuple[str, ...] | None:
    """Records sharing this key must be written in file order: never in one batch, never in two concurrent ones."""
    if item.profile_id is not None:
        return ("profile", item.profile_id)
    if item.source_id is not None:
        return ("source", item.source, item.source_id.strip())
    return None


@dataclass
class _Batch:
    """Lines in file order: those read (with their item) and those already rejected (with reason and message),
    so the rejects file comes out in line order."""

    entries: list[tuple[Line, ProfileInput | None, tuple[str, str] | None]] = field(default_factory=list)
    keys: set[tuple[str, ...]] = field(default_factory=set)

    @property
    def items(self) -> list[ProfileInput]:
        return [item for _, item, _ in self.entries if item is not None]


async def ingest(
    service: IdentityService,
    paths: Sequence[Path],
    *,
    mapping: FieldMapping | None,
    rejects: RejectsFile,
    progress: Progress,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    audit: Audit = CLI_AUDIT,
) -> IngestReport:
    """Read, batch and store every record of `paths` (its change log events by `audit`); returns the report (with
    `failure` set when an operational error stopped it: what was stored stays stored, and re-running the same files
    completes the load).

    Up to `workers` batches are in flight, so one batch's normalization overlaps another's database work. Records
    of the same (source, source_id) or profile id are never in one batch nor in two concurrent ones: they are
    written in file order, and the last one wins, as a re-run would have it."""
    report = IngestReport(files=len(paths), rejects_path=rejects.path)
    cursor = Cursor()
    in_flight: deque[tuple[_Batch, asyncio.Task[list[IngestOutcome]] | None]] = deque()

    def account(batch: _Batch, outcomes: Sequence[IngestOutcome]) -> None:
        stored = iter(outcomes)
        for line, item, refused in batch.entries:
            if item is None:
                assert refused is not None
                reject(line, *refused)
                continue
            outcome = next(stored)
            if outcome.error is not None:
                reject(line, reason_of(outcome.error), outcome.error.message)
                continue
            report.stored += 1
            report.created += outcome.created
            report.without_source_id += item.source_id is None and item.profile_id is None
            for r in outcome.rejected:
                report.values_rejected[(r.key, str(r.reason))] += 1

    def reject(line: Line, reason: str, message: str) -> None:
        report.rejected[reason] += 1
        rejects.write(line, reason, message)

    async def drain(keep: int) -> None:
        while len(in_flight) > keep:
            batch, task = in_flight.popleft()
            account(batch, await task if task is not None else [])
            progress.update(report.stored + sum(report.rejected.values()), cursor.bytes)

    async def submit(batch: _Batch) -> None:
        if any(batch.keys & other.keys for other, _ in in_flight):
            await drain(0)
        items = batch.items
        in_flight.append((batch, asyncio.create_task(service.ingest_batch(items, audit=audit)) if items else None))
        await drain(workers - 1)

    loop = asyncio.get_running_loop()
    started = loop.time()
    batch = _Batch()
    try:
        for line in open_inputs(paths, mapping, cursor):
            report.records += 1
            if report.records % YIELD_EVERY == 0:
                # Let a batch whose transaction is done send its commit: until then it holds the change log's
                # sequence lock, which every writer (API replicas too) waits for.
                await asyncio.sleep(0)
            item: ProfileInput | None = None
            refused = line.error
            if refused is None:
                try:
                    item = profile_input_from_record(line.record)
                except InvalidInput as exc:
                    refused = ("INVALID_RECORD", exc.message)
            key = _conflict_key(item) if item is not None else None
            if key is not None and key in batch.keys:
                await submit(batch)  # the same record twice: the earlier line is written first
                batch = _Batch()
            batch.entries.append((line, item, refused))
            if key is not None:
                batch.keys.add(key)
            if len(batch.entries) >= batch_size:
                await submit(batch)
                batch = _Batch()
        if batch.entries:
            await submit(batch)
        await drain(0)
    except AppError as exc:
        report.failure = exc
    finally:
        # On a failure, an interruption or a bug: batches still in flight are abandoned (a re-run redoes them).
        tasks = [task for _, task in in_flight if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        rejects.close()
        report.elapsed_s = loop.time() - started
        progress.finish()
    return report


def summary(report: IngestReport) -> list[str]:
    rejected = sum(report.rejected.values())
    status = "stopped" if report.failure is not None else "done"
    lines = [
        f"ingest {status}: {report.records:,} records read from {report.files} file(s) in {report.elapsed_s:.1f}s "
        f"({report.rate:,.0f} records/s)",
        f"  stored    {report.stored:>12,}  ({report.created:,} created, {report.stored - report.created:,} updated)",
        f"  rejected  {rejected:>12,}" + (f"  (lines in {report.rejects_path})" if rejected else ""),
    ]
    lines += [f"    {reason:<34}{count:>10,}" for reason, count in sorted(report.rejected.items())]
    if report.values_rejected:
        lines.append("  values left out of stored records (the rest of each record was stored):")
        lines += [
            f"    {key + ' ' + reason:<34}{count:>10,}"
            for (key, reason), count in sorted(report.values_rejected.items())
        ]
    if report.without_source_id:
        lines.append(
            f"  warning: {report.without_source_id:,} stored records had no source_id: each run creates new "
            "profiles for them, so re-running this file duplicates them"
        )
    return lines


def demo_file() -> Path:
    """The demo data set shipped with the package (app/demo/demo.jsonl)."""
    path = Path(str(resources.files("app").joinpath("demo", "demo.jsonl")))
    if not path.is_file():
        raise InvalidInput(f"the demo data set is not installed ({path} is missing)")
    return path


def default_rejects(first: Path) -> Path:
    return first.with_name(first.name + ".rejects.jsonl")
