"""The CSV files of `idgraph import` (app/bulk/importfiles.py): cells in the offline importer's format, and profile
rows taken out and written again without losing a value's type."""

from __future__ import annotations

import csv
from pathlib import Path

from app.bulk import importfiles


def test_cells_quote_strings_and_leave_missing_values_empty() -> None:
    row = importfiles.encode([7, 'a "b"\nc', "", None, True, 2**62, 0.1])
    assert row == '7,"a ""b""\nc","",,true,4611686018427387904,0.1\n'
    assert next(csv.reader(row.splitlines(keepends=True))) == [
        "7",
        'a "b"\nc',
        "",
        "",
        "true",
        "4611686018427387904",
        "0.1",
    ]


def test_taken_rows_keep_their_attributes_and_the_others_stay(tmp_path: Path) -> None:
    files = importfiles.ProfileFiles(tmp_path, "2026-01-01T00:00:00Z", open_limit=1)
    attributes = {"tier": "Gold", "score": 3, "ratio": 0.5, "vip": False, "note": 'x,\n"y"', "empty": ""}
    files.write(1, "p1", "crm", "C-1", 1, attributes)
    files.write(2, "p2", "crm", None, 1, {"tier": "Silver"})
    files.write(3, "p3", "ivr", "I-3", 1, {})
    files.write(4, "p4", "crm", "C-4", 1, attributes)

    taken = list(files.take({1: None, 3: None}))

    assert [(node, cells[1], cells[3], attrs) for node, cells, attrs in taken] == [
        (1, "p1", "C-1", attributes),
        (3, "p3", "I-3", {}),
    ]
    rows: dict[str, dict[str, str]] = {}
    for path in files.files():
        with path.open(encoding="utf-8", newline="") as source:
            rows.update((row["id"], row) for row in csv.DictReader(source))
    assert set(rows) == {"p2", "p4"}
    assert rows["p4"]["attr.note"] == 'x,\n"y"' and rows["p4"]["attr.score:long"] == "3"
    assert rows["p2"]["source_id"] == "" and rows["p4"]["attr_at.tier:datetime"] == "2026-01-01T00:00:00Z"
    assert importfiles.decode_attributes(
        ("attr.score:long", "attr.vip:boolean", "attr.ratio:double", "attr_at.score:datetime"),
        ["3", "false", "0.5", "t"],
    ) == {"score": 3, "vip": False, "ratio": 0.5}
