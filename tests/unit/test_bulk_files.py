"""Reading bulk files (line numbers, rejects by reason), the progress line and the summary, without a database."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from app.bulk.ingest import Cursor, IngestReport, Line, RejectsFile, demo_file, ingest, read_csv, read_jsonl, summary
from app.bulk.mappings import SALESFORCE, parse_mapping
from app.bulk.progress import Progress, human_bytes, human_duration
from app.config import REPO_ROOT
from app.domain.changes import Audit
from app.domain.model import ProfileInput
from app.domain.validation import profile_input_from_record
from app.services.identity import IdentityService
from app.services.writes import IngestOutcome
from bench.datagen import records


def records_of(line: Line) -> dict[str, Any]:
    assert isinstance(line.record, dict)
    return line.record


def test_json_lines_are_numbered_from_one_and_blank_lines_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"source": "crm"}\n'  # a byte order mark on the first line is tolerated
        b"\n"
        b"   \n"
        b'{"source": \n'
        b"\xff\xfe not utf-8\n"
        b"[1, 2]\r\n"
    )
    cursor = Cursor()
    lines = list(read_jsonl(path, cursor))
    assert [(line.number, line.error[0] if line.error else None) for line in lines] == [
        (1, None),
        (4, "INVALID_JSON"),
        (5, "INVALID_ENCODING"),
        (6, None),
    ]
    assert lines[0].record == {"source": "crm"}
    assert lines[3].record == [1, 2] and lines[3].original == "[1, 2]"
    assert cursor.bytes == path.stat().st_size


def test_json_lines_nested_too_deeply_or_with_lone_surrogates_are_refused_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(
        b'{"source": "crm", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        b'{"source": "crm", "source_id": "a\\ud800b"}\n'
        b'{"source": "crm", "source_id": "\\ud83d\\ude00"}\n'  # a surrogate pair is one character: fine
    )
    lines = list(read_jsonl(path, Cursor()))
    assert [(line.number, line.error[0] if line.error else None) for line in lines] == [
        (1, "INVALID_JSON"),
        (2, "INVALID_ENCODING"),
        (3, None),
    ]


def test_csv_records_are_numbered_by_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "Contact.Id,Contact.Email,Contact.Phone,Note\n"
        '003A,a@example.com,,"two\nlines"\n'
        ",,,\n"
        "003B,b@example.com,+14155550000,fine\n"
        "003C,c@example.com,,x,extra\n"
        "003D,d@example.com\n",  # short rows: the missing trailing cells are empty
        encoding="utf-8",
    )
    lines = list(read_csv(path, SALESFORCE, Cursor()))
    assert [line.number for line in lines] == [2, 5, 6, 7]
    assert records_of(lines[0])["attributes"] == {"Note": "two\nlines"}
    assert lines[2].error is not None and lines[2].error[0] == "INVALID_CSV"
    assert records_of(lines[3])["source_id"] == "003D"


def test_csv_cells_that_do_not_decode_reject_only_their_record(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"Contact.Id,Contact.Email\n003A,a@example.com\n003B,\xe9@example.com\n003C,c@example.com\n")
    lines = list(read_csv(path, SALESFORCE, Cursor()))
    assert [(line.number, line.error[0] if line.error else None) for line in lines] == [
        (2, None),
        (3, "INVALID_ENCODING"),
        (4, None),
    ]
    latin = parse_mapping(
        'source = "s"\nsource_id = "Contact.Id"\nencoding = "latin-1"\n[identities]\nemail_address = "Contact.Email"\n',
        origin="m.toml",
    )
    again = list(read_csv(path, latin, Cursor()))
    assert records_of(again[1])["identities"][0]["value"] == "é@example.com"


def test_the_rejects_file_holds_one_json_object_per_line_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.rejects.jsonl"
    path.write_text("stale content of an earlier run\n")
    rejects = RejectsFile(path)
    assert not path.exists()  # replaced on every run; created at the first reject only
    rejects.write(Line("in.jsonl", 7, "garbage"), "INVALID_JSON", "Expecting value at column 1")
    rejects.close()
    assert json.loads(path.read_text()) == {
        "file": "in.jsonl",
        "line": 7,
        "reason": "INVALID_JSON",
        "message": "Expecting value at column 1",
        "input": "garbage",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_progress_redraws_one_line_on_a_terminal() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Progress(stream, 10_000, interactive=True, clock=lambda: now[0])
    now[0] = 2.0
    progress.update(1000, 2500)
    now[0] = 4.0
    progress.update(2000, 5000)
    progress.finish()
    text = stream.getvalue()
    assert text.startswith("\r") and text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "2,000 records" in text and "(50%)" in text and "500 records/s" in text and "ETA 0:04" in text


def test_progress_writes_plain_lines_every_few_seconds_when_not_a_terminal() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Progress(stream, 0, interactive=False, clock=lambda: now[0])
    for second in range(1, 12):
        now[0] = float(second)
        progress.update(second * 100, second * 1000)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("ingest: 500 records")


def test_sizes_and_durations_read_well() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MB"
    assert human_duration(75) == "1:15"
    assert human_duration(3725) == "1:02:05"


def test_the_summary_counts_rejects_by_reason_and_warns_about_records_without_source_id() -> None:
    report = IngestReport(files=1, records=10, stored=7, created=5, elapsed_s=2.0, rejects_path=Path("x.rejects"))
    report.rejected.update({"INVALID_JSON": 2, "SUPPRESSED": 1})
    report.values_rejected[("phone_number", "INVALID_PHONE")] = 3
    report.without_source_id = 4
    text = "\n".join(summary(report))
    assert "10 records read" in text and "5 records/s" in text
    assert "7  (5 created, 2 updated)" in text
    assert "rejected" in text and "x.rejects" in text
    assert "INVALID_JSON" in text and "SUPPRESSED" in text and "phone_number INVALID_PHONE" in text
    assert "4 stored records had no source_id" in text


def test_the_committed_demo_data_set_is_what_the_script_writes_and_every_line_is_a_profile() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_demo.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = list(read_jsonl(demo_file(), Cursor()))
    assert len(lines) == 305 and all(line.error is None for line in lines)
    items = [profile_input_from_record(line.record) for line in lines]
    assert {item.source for item in items} == {"crm", "ivr", "webchat", "email"}
    assert all(item.source_id for item in items)
    assert ("phone_number", "+14155552671") in items[0].identities and items[0].attributes["tier"] == "Platinum"


class _InstantService:
    """Stands in for the use case (not for the database): every record is stored at once."""

    async def ingest_batch(self, items: Sequence[ProfileInput], *, audit: Audit) -> list[IngestOutcome]:
        await asyncio.sleep(0)
        return [IngestOutcome(f"p-{n}", True, (), None) for n, _ in enumerate(items)]


def _peak_memory_of_ingesting(path: Path, tmp_path: Path) -> int:
    service = cast(IdentityService, _InstantService())
    tracemalloc.start()
    try:
        report = asyncio.run(
            ingest(
                service,
                [path],
                mapping=None,
                rejects=RejectsFile(tmp_path / "r.jsonl"),
                progress=Progress(None, 0),
                batch_size=200,
            )
        )
        assert report.failure is None and report.stored == report.records
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_in_the_file_size(tmp_path: Path) -> None:
    small = write_records(tmp_path / "small.jsonl", 1_500)  # both many times what two batches in flight hold
    large = write_records(tmp_path / "large.jsonl", 9_000)
    assert _peak_memory_of_ingesting(large, tmp_path) < 1.5 * _peak_memory_of_ingesting(small, tmp_path)


def write_records(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for record in records(count):
            out.write(json.dumps(record) + "\n")
    return path
