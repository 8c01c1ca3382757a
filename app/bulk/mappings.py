"""Field mappings: how the columns of a CSV export become an ingest record (source, source_id, identities,
attributes). Two presets (Salesforce and Dynamics 365 contact exports) and the user's own TOML files."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import InvalidInput

_SANITIZE = re.compile(r"[^A-Za-z0-9_]")
_Fail = Callable[[str], InvalidInput]
_TOP_KEYS = ("source", "source_id", "identities", "attributes", "ignore", "delimiter", "encoding")


@dataclass(frozen=True)
class IdentityColumns:
    """The columns holding one identity key: every non-empty one, or only the first non-empty one."""

    key: str
    columns: tuple[str, ...]
    first_only: bool = False


@dataclass(frozen=True)
class FieldMapping:
    name: str
    source: str
    source_id: str | None  # the column with the record's id in its source; None: every row is a new profile
    identities: tuple[IdentityColumns, ...]
    attributes: Mapping[str, str] | None  # column -> attribute name; None: every other column ("rest")
    ignore: frozenset[str] = frozenset()  # with "rest": columns never stored
    delimiter: str = ","
    encoding: str = "utf-8-sig"

    def identity_columns(self) -> set[str]:
        return {c for group in self.identities for c in group.columns}

    def check_header(self, header: Sequence[str], origin: str) -> None:
        """Refuse a file this mapping cannot be meant for: its id column or all its identity columns missing."""
        present = set(header)
        if self.source_id is not None and self.source_id not in present:
            raise InvalidInput(
                f"{origin}: the mapping '{self.name}' takes source_id from column '{self.source_id}', "
                "which the header does not have"
            )
        if not self.identity_columns() & present:
            wanted = ", ".join(sorted(self.identity_columns()))
            raise InvalidInput(
                f"{origin}: none of the mapping '{self.name}' identity columns ({wanted}) is in the header"
            )
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise InvalidInput(f"{origin}: the header repeats column {duplicates[0]!r}")

    def record(self, row: Mapping[str, str]) -> dict[str, Any]:
        """The ingest record of one row (the JSON Lines shape). Empty cells are skipped, never stored as null."""
        cells = {column: value.strip() for column, value in row.items() if value is not None and value.strip()}
        identities: list[dict[str, str]] = []
        for group in self.identities:
            for column in group.columns:
                if column in cells:
                    identities.append({"key": group.key, "value": cells[column]})
                    if group.first_only:
                        break
        used = self.identity_columns() | {self.source_id} | self.ignore
        if self.attributes is None:
            attributes = {attribute_name(c): v for c, v in cells.items() if c not in used}
        else:
            attributes = {name: cells[c] for c, name in self.attributes.items() if c in cells}
        record: dict[str, Any] = {"source": self.source, "identities": identities, "attributes": attributes}
        if self.source_id is not None and self.source_id in cells:
            record["source_id"] = cells[self.source_id]
        return record


def attribute_name(column: str) -> str:
    """A column name as an attribute name: letters, digits and '_' only, not starting with a digit, at most 64."""
    name = _SANITIZE.sub("_", column.strip()) or "_"
    if name[0].isdigit():
        name = "_" + name
    return name[:64]


SALESFORCE = FieldMapping(
    name="salesforce",
    source="salesforce",
    source_id="Contact.Id",
    identities=(
        IdentityColumns("email_address", ("Contact.Email",)),
        IdentityColumns("phone_number", ("Contact.Phone", "Contact.MobilePhone")),
        IdentityColumns("account_id", ("Account.Id",)),
    ),
    attributes=None,
)

DYNAMICS = FieldMapping(
    name="dynamics",
    source="dynamics",
    source_id="contactid",
    identities=(
        IdentityColumns("email_address", ("emailaddress1", "emailaddress2", "emailaddress3")),
        IdentityColumns("phone_number", ("telephone1", "mobilephone", "telephone2", "telephone3")),
        # accountid is the contact's account; parentcustomerid ("Company Name") names the same account, or a
        # parent contact: only the first non-empty one is an account id, so one contact never carries two.
        IdentityColumns("account_id", ("accountid", "parentcustomerid"), first_only=True),
    ),
    attributes=None,
)

PRESETS: Mapping[str, FieldMapping] = {m.name: m for m in (SALESFORCE, DYNAMICS)}


def load_mapping(spec: str) -> FieldMapping:
    """A preset by name, or a TOML mapping file by path."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.exists():
        raise InvalidInput(f"--mapping: '{spec}' is neither a preset ({', '.join(PRESETS)}) nor a file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"--mapping: cannot read {spec}: {exc.strerror}") from exc
    return parse_mapping(text, origin=str(path), name=path.stem)


def parse_mapping(text: str, *, origin: str, name: str = "custom") -> FieldMapping:
    """A TOML mapping (format in docs/bulk.md). Unknown keys and bad values are refused, naming them."""

    def fail(problem: str) -> InvalidInput:
        return InvalidInput(f"{origin}: {problem}")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - set(_TOP_KEYS))
    if unknown:
        raise fail(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (expected: {', '.join(_TOP_KEYS)})"
        )
    for required in ("source", "identities"):
        if required not in doc:
            raise fail(f"{required}: required key is missing")
    source = _string(doc["source"], "source", fail)
    source_id = _string(doc["source_id"], "source_id", fail) if "source_id" in doc else None
    identities = _identities(doc["identities"], fail)
    attributes = _attributes(doc.get("attributes", "rest"), fail)
    ignore = frozenset(_columns(doc.get("ignore", []), "ignore", fail))
    if ignore and attributes is not None:
        raise fail('ignore: only meaningful with attributes = "rest"')
    delimiter = _string(doc.get("delimiter", ","), "delimiter", fail)
    if len(delimiter) != 1:
        raise fail("delimiter: must be one character")
    encoding = _string(doc.get("encoding", "utf-8-sig"), "encoding", fail)
    try:
        sample = "A\n".encode(encoding)
    except LookupError:
        raise fail(f"encoding: unknown encoding '{encoding}'") from None
    if not sample.endswith(b"A\n"):  # ASCII-compatible encodings only: lines are split on the byte b"\n"
        raise fail(f"encoding: '{encoding}' cannot be read line by line; convert the file to UTF-8")
    return FieldMapping(name, source, source_id, identities, attributes, ignore, delimiter, encoding)


def _string(value: object, path: str, fail: _Fail) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{path}: must be a non-empty string")
    return value.strip() if path != "delimiter" else value


def _columns(value: object, path: str, fail: _Fail) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) and c.strip() for c in items):
        raise fail(f"{path}: must be a column name or a list of column names")
    return tuple(c.strip() for c in items)


def _identities(value: object, fail: _Fail) -> tuple[IdentityColumns, ...]:
    if not isinstance(value, dict) or not value:
        raise fail("identities: must be a table of identity key = column(s)")
    groups: list[IdentityColumns] = []
    for key, columns in value.items():
        path = f"identities.{key}"
        if isinstance(columns, dict):
            unknown = sorted(set(columns) - {"first_of"})
            if unknown or "first_of" not in columns:
                raise fail(
                    f"{path}: a table here takes only first_of = [columns]"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                )
            groups.append(IdentityColumns(key, _columns(columns["first_of"], f"{path}.first_of", fail), True))
        else:
            groups.append(IdentityColumns(key, _columns(columns, path, fail)))
    return tuple(groups)


def _attributes(value: object, fail: _Fail) -> Mapping[str, str] | None:
    if value == "rest":
        return None
    if isinstance(value, list):
        return {c: attribute_name(c) for c in _columns(value, "attributes", fail)}
    if isinstance(value, dict):
        mapped: dict[str, str] = {}
        for column, name in value.items():
            if not isinstance(name, str) or attribute_name(name) != name:
                raise fail(f"attributes.{column}: the attribute name must be letters, digits or _ (at most 64)")
            mapped[column] = name
        return mapped
    raise fail('attributes: must be "rest", a list of columns, or a table of column = attribute name')
