"""`idgraph import`: a first load into an empty local database, through Neo4j's offline importer.

The inputs, validation, normalization, blocked values, fan-out rule, attributes, provenance and rejects file are
`idgraph ingest`'s (app/bulk/ingest.py, app/services/writes.py Writes.prepare, cypher/write_profiles.cypher), and so
is the graph left behind: tests/e2e/test_import.py compares the two. Stages:

1. normalize: lines are read in the main process (ingest's readers); worker processes validate and normalize them;
   the main process takes the results in file order and writes profile rows and links to CSV files as they come.
2. write files: records of one (source, source_id) seen more than once are merged as ingest's upserts merge them
   (the last line's attributes win, identities are united), identities get their fan-out state, edges are split
   into linking (HAS_IDENTITY) and not (OBSERVED).
3. import: neo4j-admin writes the store into a scratch home (app/db/offline.py); the server still serves the old one.
4. start: the server is stopped, the stores swapped, the server started (the old store is put back on a failure).
5. schema: the migrations are applied and the erasure key's fingerprint recorded.

The database is empty, so nothing is suppressed. Memory: one entry per distinct identity and per source record.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from app.bulk import importfiles
from app.bulk.importserver import target_for
from app.bulk.ingest import Cursor, IngestReport, Line, RejectsFile, open_inputs, summary
from app.bulk.mappings import FieldMapping
from app.bulk.progress import Progress, human_duration
from app.config import Settings
from app.domain.normalize import normalize_many
from app.domain.strategy import Strategy
from app.domain.validation import profile_input_from_record
from app.errors import InvalidInput

CHUNK = 2000  # records a worker normalizes at a time


@dataclass
class ImportReport(IngestReport):
    stages: dict[str, float] = field(default_factory=dict)  # seconds, by stage
    identities: int = 0
    saturated: int = 0


# A record ready for the files: (profile id, source, source_id, attributes, identities as (key, value, raw, rule,
# rule_version, blocked), rejected values as (key, reason), and made in the worker too: the profile's attribute
# columns, its CSV row without the node id, each identity's link row without the node ids, whether a value spans
# lines); or a refusal (reason, message).
Ready = tuple[
    str, str, str | None, dict[str, Any], list[tuple[str, str, str, str, str, bool]], list[tuple[str, str]],
    tuple[str, ...], str, list[str], bool,
]  # fmt: skip
Refusal = tuple[str, str]

_strategy: Strategy | None = None
_now = ""


def _init_worker(strategy: Strategy, now: str) -> None:
    global _strategy, _now
    _strategy, _now = strategy, now


def prepare(records: list[object]) -> list[Ready | Refusal]:
    """In a worker: what ingest's service makes of each record (Writes.prepare with an empty suppression list, and
    the database's answers on an empty database: a profile_id names no profile, the identity cap per profile)."""
    strategy = _strategy
    assert strategy is not None
    cap = strategy.protections.max_identities_per_profile
    out: list[Ready | Refusal] = []
    for record in records:
        try:
            item = profile_input_from_record(record)
        except InvalidInput as exc:
            out.append(("INVALID_RECORD", exc.message))
            continue
        accepted, rejected = normalize_many(strategy, item.identities)
        if not accepted and not item.attributes:
            reasons = ", ".join(f"{r.key}: {r.reason.value}" for r in rejected) or "none given"
            message = (
                "no usable identity: " + reasons
                if item.identities
                else "nothing to store: give identities or attributes"
            )
            out.append(("NOTHING_USABLE", message))
            continue
        if item.profile_id is not None:
            out.append(("NOT_FOUND", f"no profile with id {item.profile_id}"))
            continue
        profile_id = str(uuid.uuid4())
        if cap > 0 and len(accepted) > cap:
            out.append(("NOTHING_USABLE", _too_many(profile_id, len(accepted), cap)))
            continue
        identities = [
            (n.key, n.value, n.raw, str(n.rule), n.rule_version, strategy.is_blocked(n.identity)) for n in accepted
        ]
        source_id = item.source_id.strip() if item.source_id is not None else None
        values = [(r.key, str(r.reason)) for r in rejected]
        attributes = dict(item.attributes)
        columns, row = importfiles.profile_row(profile_id, item.source, source_id, 1, attributes, _now)
        tails = [importfiles.link_tail(n.raw, item.source, n.rule_version) for n in accepted]
        multiline = any(map(importfiles.needs_multiline, (source_id, *attributes.values(), *(n.raw for n in accepted))))
        out.append((profile_id, item.source, source_id, attributes, identities, values, columns, row, tails, multiline))
    return out


def _too_many(profile_id: str, count: int, cap: int) -> str:
    return (
        f"profile {profile_id} would hold {count} identities, more than the limit of {cap} per profile; nothing of "
        "this input was stored"
    )


@dataclass
class Later:
    """The lines after the first of one source record: applied at the end, in file order."""

    node: int
    profile_id: str
    entries: list[tuple[Line, Ready]] = field(default_factory=list)


class Files:
    """The state of stage 1 and 2: the CSV files, the identities and the source records seen."""

    def __init__(self, directory: Path, strategy: Strategy, report: ImportReport, rejects: RejectsFile) -> None:
        self.directory = directory
        self.strategy = strategy
        self.report = report
        self.rejects = rejects
        self.now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.profiles = importfiles.ProfileFiles(directory, self.now)
        self.identities: dict[tuple[str, str], importfiles.Identity] = {}
        self.records: dict[tuple[str, str], tuple[int, str]] = {}  # (source, source_id) -> (node, profile id)
        self.later: dict[int, Later] = {}
        self.links_path = directory / "links.scratch.csv"
        self._links = self.links_path.open("w", encoding="utf-8", newline="")
        self.nodes = 0
        self.multiline = False

    def reject(self, line: Line, reason: str, message: str) -> None:
        self.report.rejected[reason] += 1
        self.rejects.write(line, reason, message)

    def identity(self, key: str, value: str, rule: str, rule_version: str, blocked: bool) -> importfiles.Identity:
        found = self.identities.get((key, value))
        if found is None:
            found = self.identities[(key, value)] = importfiles.Identity(len(self.identities) + 1, rule, rule_version,
                                                                         blocked)  # fmt: skip
        return found

    def stored(self, ready: Ready, *, created: bool) -> None:
        self.report.stored += 1
        self.report.created += created
        self.report.without_source_id += ready[2] is None
        for key, reason in ready[5]:
            self.report.values_rejected[(key, reason)] += 1

    def add(self, line: Line, result: Ready | Refusal) -> None:
        if len(result) == 2:
            self.reject(line, *result)
            return
        profile_id, source, source_id, _, identities, _, columns, row, tails, multiline = result
        if source_id is not None:
            seen = self.records.get((source, source_id))
            if seen is not None:  # the same record again: merged at the end, as ingest's upserts merge it
                for key, value, _, rule, rule_version, blocked in identities:
                    self.identity(key, value, rule, rule_version, blocked)
                self.later.setdefault(seen[0], Later(*seen)).entries.append((line, result))
                return
        self.nodes += 1
        node = self.nodes
        if source_id is not None:
            self.records[(source, source_id)] = (node, profile_id)
        self.profiles.write_encoded(node, columns, row)
        self.multiline = self.multiline or multiline
        prefix = f"{node},"
        for (key, value, _, rule, rule_version, blocked), tail in zip(identities, tails, strict=True):
            found = self.identity(key, value, rule, rule_version, blocked)
            found.held()
            self._links.write(prefix + str(found.node) + tail)
        self.stored(result, created=True)

    def finish(self) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
        """Stage 2: merge repeated records, write identities and edges; returns the node and relationship files."""
        self._links.close()
        cap = self.strategy.protections.max_identities_per_profile
        held = importfiles.read_links(self.links_path, self.later) if self.later else {}
        updates: dict[int, list[dict[str, Any]]] = {}
        for node, later in self.later.items():
            links = held[node]
            for line, ready in later.entries:
                _, source, _, attributes, identities, *_ = ready
                found_all = [self.identities[(key, value)] for key, value, *_ in identities]
                fresh = {found.node for found in found_all} - set(links)
                if cap > 0 and len(links) + len(fresh) > cap:
                    self.reject(line, "NOTHING_USABLE", _too_many(later.profile_id, len(links) + len(fresh), cap))
                    continue
                for found, (_, _, raw, _, rule_version, _) in zip(found_all, identities, strict=True):
                    if found.node not in links:
                        found.held()
                    links[found.node] = (raw, source, rule_version)  # a held identity's edge: raw and source refreshed
                    self.multiline = self.multiline or importfiles.needs_multiline(raw)
                updates.setdefault(node, []).append(attributes)
                self.stored(ready, created=False)
        # The rows of merged records, written again with every line's attributes applied (None removes one).
        for node, cells, attributes in self.profiles.take(updates):
            for change in updates[node]:
                attributes.update(change)
            version = int(cells[6]) + len(updates[node])
            self.profiles.write(node, cells[1], cells[2], cells[3] or None, version, attributes)
        self.profiles.close()
        contests = importfiles.contested(
            self.links_path, self.identities, self.strategy.contest_limits, replaced=held, multiline=self.multiline
        )
        linking, self.report.saturated = importfiles.write_identities(
            self.directory / "identities.csv", self.identities, self.strategy.protections.max_profiles_per_identity,
            self.now, contests,
        )  # fmt: skip
        self.report.identities = len(linking)
        self.multiline = self.multiline or self.profiles.multiline
        relationships = importfiles.write_edges(
            self.directory, self.links_path, linking, self.now, replaced=held, multiline=self.multiline
        )
        nodes = [("Profile", path) for path in self.profiles.files()] + [
            ("Identity", self.directory / "identities.csv")
        ]
        return nodes, relationships


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    while chunk := list(islice(lines, size)):
        yield chunk


def write_files(
    paths: Sequence[Path],
    mapping: FieldMapping | None,
    strategy: Strategy,
    directory: Path,
    *,
    report: ImportReport,
    rejects: RejectsFile,
    progress: Progress,
    workers: int,
) -> tuple[Files, list[tuple[str, Path]], list[tuple[str, Path]]]:
    """Stages 1 and 2: the CSV files of the inputs in `directory`."""
    files = Files(directory, strategy, report, rejects)
    cursor = Cursor()
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(strategy, files.now)
    ) as pool:
        submitted = (
            (chunk, pool.submit(prepare, [line.record for line in chunk if line.error is None]))
            for chunk in _chunks(open_inputs(paths, mapping, cursor), CHUNK)
        )
        pending: list[tuple[list[Line], Future[list[Ready | Refusal]]] | None] = [
            next(submitted, None) for _ in range(workers + 1)
        ]
        while (head := pending.pop(0)) is not None:
            pending.append(next(submitted, None))
            chunk, future = head
            results = iter(future.result())
            for line in chunk:
                files.add(line, (line.error if line.error is not None else next(results)))
            report.records += len(chunk)
            progress.update(report.records, cursor.bytes)
    progress.update(report.records, cursor.bytes, force=True)
    progress.finish()
    report.stages["normalize"] = time.monotonic() - started
    started = time.monotonic()
    nodes, relationships = files.finish()
    report.stages["write files"] = time.monotonic() - started
    return files, nodes, relationships


def import_summary(report: ImportReport) -> list[str]:
    lines = summary(report)
    lines[0] = "import" + lines[0].removeprefix("ingest")
    lines.insert(3 + len(report.rejected), f"  identities{report.identities:>12,}  ({report.saturated:,} saturated)")
    lines.append(
        "  stages: " + ", ".join(f"{name} {human_duration(s)} ({s:.1f}s)" for name, s in report.stages.items())
    )
    return lines


def run(
    settings: Settings,
    paths: Sequence[Path],
    *,
    mapping: FieldMapping | None,
    rejects_path: Path,
    workers: int,
    stream: TextIO | None,
) -> ImportReport:
    """The whole import; raises ImportRefused (nothing changed) or an AppError of the stage that failed (the old
    database then serves as before)."""
    say: Callable[[str], None] = (lambda text: print(f"import: {text}", file=stream, flush=True)) if stream else (
        lambda text: None
    )  # fmt: skip
    target = target_for(settings, say)
    started = time.monotonic()
    report = ImportReport(files=len(paths), rejects_path=rejects_path)
    scratch = target.scratch()
    rejects = RejectsFile(rejects_path)
    try:
        work = scratch / "files"
        work.mkdir(parents=True)
        progress = Progress(stream, sum(p.stat().st_size for p in paths), label="import (normalize)")
        try:
            files, nodes, relationships = write_files(
                paths, mapping, settings.strategy(), work, report=report, rejects=rejects, progress=progress,
                workers=workers,
            )  # fmt: skip
        finally:
            rejects.close()
        report.elapsed_s = time.monotonic() - started
        target.load(scratch, nodes, relationships, multiline=files.multiline, report=report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.elapsed_s = time.monotonic() - started
    return report
