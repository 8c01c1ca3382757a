"""docs/normalization.md's example tables, run through the real normalization, so the page cannot drift from the code.

Every Markdown table whose header starts `| key | input | result |` or `| key | input | raw kept |` is an example
table. Its cells hold Markdown code spans of JSON string literals (`"+14155552671"`), each optionally repeated with
the multiplication sign U+00D7 and a count, joined with `+`. A result is the normalized value, optionally followed
by `blocked`, or `**refused** `CODE``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.domain.model import NormalizedIdentity, Rejection, RejectionReason
from app.domain.normalize import MAX_VALUE_LENGTH, normalize
from app.domain.strategy import default_strategy

DOC = Path(__file__).resolve().parents[2] / "docs" / "normalization.md"
STRATEGY = default_strategy()

_RESULT_HEADER = ("key", "input", "result")
_RAW_HEADER = ("key", "input", "raw kept")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_REFUSED = re.compile(r"\*\*refused\*\* `([A-Z_]+)`")
_ACCEPTED = re.compile(r"`([^`]+)`( blocked)?")
_DECODER = json.JSONDecoder()
TIMES = "\u00d7"  # the multiplication sign of `"x" TIMES 256`
_REPEAT = re.compile(TIMES + r"\s*(\d+)")


@dataclass(frozen=True)
class Row:
    line: int
    kind: str  # "result" or "raw"
    key: str
    input: str
    expected: str  # the normalized value, the raw spelling, or the refusal code
    refused: bool
    blocked: bool


def cells(line: str) -> list[str]:
    assert line.startswith("|") and line.endswith("|"), line
    assert "\\|" not in line, "example cells must not hold an escaped pipe"
    return [cell.strip() for cell in line[1:-1].split("|")]


def code_span(cell: str, line: int) -> str:
    match = _CODE_SPAN.fullmatch(cell)
    assert match, f"line {line}: expected one code span, got {cell!r}"
    return match.group(1)


def text(expression: str, line: int = 0) -> str:
    """A cell's string: JSON string literals, each optionally times a count (`TIMES N`), joined with `+`."""
    parts: list[str] = []
    at = 0
    while True:
        at = _skip_spaces(expression, at)
        try:
            literal, at = _DECODER.raw_decode(expression, at)
        except json.JSONDecodeError as error:
            raise AssertionError(f"line {line}: not a JSON string literal in {expression!r}") from error
        assert isinstance(literal, str), f"line {line}: {expression!r} holds a non-string"
        at = _skip_spaces(expression, at)
        repeat = _REPEAT.match(expression, at)
        if repeat:
            literal *= int(repeat.group(1))
            at = _skip_spaces(expression, repeat.end())
        parts.append(literal)
        if at == len(expression):
            return "".join(parts)
        assert expression[at] == "+", f"line {line}: expected '+' at column {at} of {expression!r}"
        at += 1


def _skip_spaces(expression: str, at: int) -> int:
    while at < len(expression) and expression[at] == " ":
        at += 1
    return at


def example_rows(markdown: str) -> list[Row]:
    rows: list[Row] = []
    lines = markdown.splitlines()
    n = 0
    while n < len(lines):
        header = tuple(cells(lines[n])[:3]) if lines[n].startswith("|") else ()
        if header not in (_RESULT_HEADER, _RAW_HEADER):
            n += 1
            continue
        kind = "result" if header == _RESULT_HEADER else "raw"
        n += 2  # the header and its |---| line
        while n < len(lines) and lines[n].startswith("|"):
            rows.append(parse_row(kind, cells(lines[n]), n + 1))
            n += 1
    return rows


def parse_row(kind: str, row: list[str], line: int) -> Row:
    key, raw = code_span(row[0], line), text(code_span(row[1], line), line)
    result = row[2]
    if kind == "raw":
        return Row(line, kind, key, raw, text(code_span(result, line), line), refused=False, blocked=False)
    refused = _REFUSED.fullmatch(result)
    if refused:
        return Row(line, kind, key, raw, refused.group(1), refused=True, blocked=False)
    accepted = _ACCEPTED.fullmatch(result)
    assert accepted, f'line {line}: a result is `"value"`, `"value"` blocked or **refused** `CODE`: {result!r}'
    return Row(line, kind, key, raw, text(accepted.group(1), line), refused=False, blocked=bool(accepted.group(2)))


MARKDOWN = DOC.read_text(encoding="utf-8")
ROWS = example_rows(MARKDOWN)


@pytest.mark.parametrize("row", ROWS, ids=[f"line{row.line}" for row in ROWS])
def test_example_row_matches_the_code(row: Row) -> None:
    result = normalize(STRATEGY, row.key, row.input)
    where = f"docs/normalization.md line {row.line}: {row.key} {row.input!r}"
    if row.refused:
        assert isinstance(result, Rejection), f"{where}: documented as refused, but normalizes to {result}"
        assert result.reason == RejectionReason(row.expected), f"{where}: refused with {result.reason}"
        return
    assert isinstance(result, NormalizedIdentity), f"{where}: documented as accepted, but refused: {result}"
    if row.kind == "raw":
        assert result.raw == row.expected, f"{where}: raw kept is {result.raw!r}"
        return
    assert result.value == row.expected, f"{where}: normalizes to {result.value!r}"
    assert STRATEGY.is_blocked(result.identity) == row.blocked, f"{where}: blocked is {not row.blocked}"


def test_the_doc_has_example_tables_for_every_rule_and_outcome() -> None:
    results = [row for row in ROWS if row.kind == "result"]
    assert len(results) >= 60
    assert any(row.kind == "raw" for row in ROWS)
    for attribute in STRATEGY.attributes:
        assert any(row.key == attribute.name and not row.refused for row in results), attribute.name
        assert any(row.key == attribute.name and row.refused for row in results), attribute.name
    assert any(row.blocked for row in results)
    # Every code normalization itself can return has an example.
    produced = {RejectionReason(row.expected) for row in results if row.refused}
    normalization_codes = {
        RejectionReason.UNKNOWN_KEY,
        RejectionReason.EMPTY,
        RejectionReason.TOO_LONG,
        RejectionReason.INVALID_PHONE,
        RejectionReason.INVALID_EMAIL,
    }
    assert normalization_codes <= produced, normalization_codes - produced


def test_every_rejection_reason_is_documented() -> None:
    # A code added to RejectionReason must be explained in the page's code table.
    for reason in RejectionReason:
        assert f"| `{reason.value}` |" in MARKDOWN, f"{reason.value} is missing from the rejection codes table"


def test_the_documented_default_strategy_and_limit_are_the_code_s() -> None:
    assert f"{MAX_VALUE_LENGTH} characters" in MARKDOWN
    assert f"default region `{STRATEGY.default_region}`" in MARKDOWN
    for attribute in STRATEGY.attributes:
        assert f"| `{attribute.name}` | `{attribute.normalization.value}`" in MARKDOWN, attribute.name


def test_the_table_parser_reads_what_the_page_promises() -> None:
    assert text(f'"x" {TIMES} 3') == "xxx"
    assert text(f'"  " + "ab" {TIMES} 2 + "\\t"') == "  abab\t"
    assert text('"\\u00a0"') == "\u00a0"
    row = parse_row("result", ["`phone_number`", '`"911"`', "**refused** `INVALID_PHONE`"], 1)
    assert row.refused and row.expected == "INVALID_PHONE"
    row = parse_row("result", ["`phone_number`", '`"000-000-0000"`', '`"+10000000000"` blocked'], 1)
    assert row.blocked and row.expected == "+10000000000"
    with pytest.raises(AssertionError):
        parse_row("result", ["`phone_number`", '`"911"`', "refused INVALID_PHONE"], 1)
