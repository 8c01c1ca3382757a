"""The CSV files of `idgraph import` (app/bulk/importing.py), in the header format of Neo4j's offline importer.

The graph is the one cypher/write_profiles.cypher writes:

    (:Profile {id, source, source_id, created_at, updated_at, version, `attr.<name>`, `attr_at.<name>`})
      -[:HAS_IDENTITY|OBSERVED {raw, source, rule_version, first_seen, last_seen}]->
    (:Identity {key, value, rule, rule_version, blocked, saturated, created_at, last_seen [, saturated_at]
                [, contested, contested_key, contested_values, contested_at]})

Profiles are written as they come, one file per set of attribute columns (a column's type is part of its name, so
the files need no empty cells). Links (a profile holding an identity) go to a scratch file first: whether an edge
links (HAS_IDENTITY) or not (OBSERVED) is known only at the end, when every identity's holders are counted.
Strings are always quoted and a missing value is an empty, unquoted cell, so an empty string stays one.
"""

from __future__ import annotations

import csv
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from app.db.records import ATTRIBUTE_PREFIX, ATTRIBUTE_TIME_PREFIX
from app.domain.fanout import Contest, contested_by

PROFILE_HEADER = (":ID(Profile)", "id", "source", "source_id", "created_at:datetime", "updated_at:datetime",
                  "version:long")  # fmt: skip
IDENTITY_HEADER = (":ID(Identity)", "key", "value", "rule", "rule_version", "blocked:boolean", "saturated:boolean",
                   "created_at:datetime", "last_seen:datetime", "saturated_at:datetime", "contested:boolean",
                   "contested_key", "contested_values:long", "contested_at:datetime")  # fmt: skip
EDGE_HEADER = (":START_ID(Profile)", ":END_ID(Identity)", "raw", "source", "rule_version", "first_seen:datetime",
               "last_seen:datetime")  # fmt: skip
_SUFFIX = {str: "", bool: ":boolean", int: ":long", float: ":double"}
_DECODE: dict[str, Callable[[str], Any]] = {
    "": str,
    ":boolean": lambda cell: cell == "true",
    ":long": int,
    ":double": float,
}


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    return '"' + text.replace('"', '""') + '"'


def encode(row: tuple[Any, ...] | list[Any]) -> str:
    return ",".join(map(cell, row)) + "\n"


def needs_multiline(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or "\r" in value)


def attribute_columns(attributes: Mapping[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
    """The attribute columns of a profile (values present only, in name order) and their values (times excluded:
    every `attr_at.<name>` cell is the load's time)."""
    names = sorted(name for name, value in attributes.items() if value is not None)
    columns = [f"{ATTRIBUTE_PREFIX}{name}{_SUFFIX[type(attributes[name])]}" for name in names]
    columns += [f"{ATTRIBUTE_TIME_PREFIX}{name}:datetime" for name in names]
    return tuple(columns), [attributes[name] for name in names]


def decode_attributes(columns: tuple[str, ...], cells: list[str]) -> dict[str, Any]:
    """The attributes of a profile row written by ProfileFiles (inverse of attribute_columns)."""
    found: dict[str, Any] = {}
    for column, text in zip(columns, cells, strict=False):
        if not column.startswith(ATTRIBUTE_PREFIX):
            continue
        name, _, kind = column[len(ATTRIBUTE_PREFIX) :].partition(":")
        found[name] = _DECODE[":" + kind if kind else ""](text)
    return found


def profile_row(profile_id: str, source: str, source_id: str | None, version: int, attributes: Mapping[str, Any],
                now: str) -> tuple[tuple[str, ...], str]:  # fmt: skip
    """A profile's attribute columns and its row without the node id (from the comma after it to the newline)."""
    columns, values = attribute_columns(attributes)
    return columns, "," + encode([profile_id, source, source_id, now, now, version, *values, *[now] * len(values)])


def link_tail(raw: str, source: str, rule_version: str) -> str:
    """A link's row in the scratch file without its two node ids: from the comma after them to the newline."""
    return "," + encode((raw, source, rule_version))


class ProfileFiles:
    """Profile rows, one file per column set. At most `open_limit` files are open at once (the least recently used
    one is closed, and reopened for appending when needed), so many column sets cannot exhaust file handles."""

    def __init__(self, directory: Path, now: str, *, open_limit: int = 64) -> None:
        self.directory = directory
        self.now = now
        self.paths: dict[tuple[str, ...], Path] = {}
        self._open: OrderedDict[tuple[str, ...], IO[str]] = OrderedDict()
        self._limit = open_limit
        self.multiline = False

    def _out(self, columns: tuple[str, ...]) -> IO[str]:
        out = self._open.get(columns)
        if out is not None:
            self._open.move_to_end(columns)
            return out
        path = self.paths.get(columns)
        if path is None:
            path = self.paths[columns] = self.directory / f"profiles-{len(self.paths)}.csv"
            out = path.open("w", encoding="utf-8", newline="")
            out.write(",".join((*PROFILE_HEADER, *columns)) + "\n")
        else:
            out = path.open("a", encoding="utf-8", newline="")
        self._open[columns] = out
        if len(self._open) > self._limit:
            self._open.popitem(last=False)[1].close()
        return out

    def write(self, node: int, profile_id: str, source: str, source_id: str | None, version: int,
              attributes: Mapping[str, Any]) -> None:  # fmt: skip
        columns, text = profile_row(profile_id, source, source_id, version, attributes, self.now)
        self.multiline = self.multiline or any(map(needs_multiline, (source_id, *attributes.values())))
        self.write_encoded(node, columns, text)

    def write_encoded(self, node: int, columns: tuple[str, ...], text: str) -> None:
        """A row made by profile_row (in a worker process), given its node id."""
        out = self._out(columns)
        out.write(str(node))
        out.write(text)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def take(self, nodes: Mapping[int, Any]) -> Iterator[tuple[int, list[str], dict[str, Any]]]:
        """Remove the rows of `nodes` from the files and yield each as (node, its cells up to version, its
        attributes), to be written again with changes. With no `nodes` the files stay as they were written."""
        if not nodes:
            return
        self.close()
        taken: list[tuple[int, list[str], dict[str, Any]]] = []
        for columns, path in self.paths.items():
            kept = path.with_name(path.name + ".tmp")
            with path.open(encoding="utf-8", newline="") as source, kept.open("w", encoding="utf-8", newline="") as out:
                reader = csv.reader(source)
                out.write(",".join(next(reader)) + "\n")
                for cells in reader:
                    node = int(cells[0])
                    if node in nodes:
                        base = len(PROFILE_HEADER)
                        taken.append((node, cells[:base], decode_attributes(columns, cells[base:])))
                    else:
                        # Re-encoded from the decoded cells: strings quoted again, missing values left empty.
                        out.write(_reencode(columns, cells))
            kept.replace(path)
        yield from taken

    def files(self) -> list[Path]:
        return list(self.paths.values())


def _reencode(columns: tuple[str, ...], cells: list[str]) -> str:
    """A row read back from a profile file, written again exactly as ProfileFiles.write wrote it."""
    base = len(PROFILE_HEADER)
    node, profile_id, source, source_id, created, updated, version = cells[:base]
    head = [int(node), profile_id, source, source_id or None, created, updated, int(version)]
    rest: list[Any] = []
    for column, text in zip(columns, cells[base:], strict=True):
        if column.startswith(ATTRIBUTE_TIME_PREFIX):
            rest.append(text)
        else:
            rest.append(decode_attributes((column,), [text]).popitem()[1])
    return encode([*head, *rest])


class Identity:
    """One identity of the load: its node id, rule, whether it is blocked, and how many profiles hold it (all, and
    those that would link through it)."""

    __slots__ = ("blocked", "holders", "linking", "node", "rule", "rule_version")

    def __init__(self, node: int, rule: str, rule_version: str, blocked: bool) -> None:
        self.node = node
        self.rule = rule
        self.rule_version = rule_version
        self.blocked = blocked
        self.holders = 0
        self.linking = 0

    def held(self, by_new_holder: bool = True) -> None:
        self.holders += by_new_holder
        self.linking += by_new_holder and not self.blocked


def write_identities(
    path: Path,
    identities: Mapping[tuple[str, str], Identity],
    limit: int,
    now: str,
    contests: Mapping[int, Contest] | None = None,
) -> tuple[dict[int, bool], int]:
    """identities.csv: the identities some profile holds, saturated when more than `limit` profiles would link
    through them (the fan-out rule; 0 = no limit), else contested when `contests` names them (by node: see
    `contested`). Returns, by node id, whether the identity links, and the number of saturated identities."""
    links: dict[int, bool] = {}
    saturated = 0
    contests = contests or {}
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(IDENTITY_HEADER) + "\n")
        for (key, value), found in identities.items():
            if not found.holders:
                continue
            over = limit > 0 and not found.blocked and found.linking > limit
            saturated += over
            # The write path re-evaluates the contested rule for identities neither blocked nor saturated only.
            contest = None if over or found.blocked else contests.get(found.node)
            out.write(encode([found.node, key, value, found.rule, found.rule_version, found.blocked, over,
                              now, now, now if over else None, True if contest else None,
                              contest.key if contest else None, contest.values if contest else None,
                              now if contest else None]))  # fmt: skip
            links[found.node] = not (found.blocked or over or contest is not None)
    return links, saturated


def contested(
    links_path: Path,
    identities: Mapping[tuple[str, str], Identity],
    limits: Mapping[str, int],
    *,
    replaced: Mapping[int, Mapping[int, Any]],
    multiline: bool = True,
) -> dict[int, Contest]:
    """The contested rule (app/domain/fanout.py `contested_by`) over the whole load, by identity node: an identity
    whose holders together hold more distinct non-blocked values of a key with max_per_customer (`limits`) than it
    allows. Two passes over the links (the scratch file, with the profiles in `replaced` taken from there)."""
    if not limits:
        return {}
    keys = {found.node: key for (key, _), found in identities.items()}
    limited = {found.node for (key, _), found in identities.items() if key in limits and not found.blocked}
    values: dict[int, list[int]] = {}  # profile node -> the limited values it holds
    for profile, identity in _links(links_path, replaced, multiline):
        if identity in limited:
            values.setdefault(profile, []).append(identity)
    held: dict[int, dict[str, set[int]]] = {}  # identity node -> key -> the values its holders hold
    for profile, identity in _links(links_path, replaced, multiline):
        own = values.get(profile)
        if own:
            per_key = held.setdefault(identity, {})
            for value in own:
                per_key.setdefault(keys[value], set()).add(value)
    found_contests: dict[int, Contest] = {}
    for identity, per_key in held.items():
        contest = contested_by(keys[identity], {k: {str(v) for v in vs} for k, vs in per_key.items()}, limits)
        if contest is not None:
            found_contests[identity] = contest
    return found_contests


def _links(links_path: Path, replaced: Mapping[int, Mapping[int, Any]], multiline: bool) -> Iterator[tuple[int, int]]:
    """(profile node, identity node) of every link of the load."""
    with links_path.open(encoding="utf-8", newline="") as source:
        rows = csv.reader(source) if multiline else (line.split(",", 2) for line in source)
        for row in rows:
            profile = int(row[0])
            if profile not in replaced:
                yield profile, int(row[1])
    for profile, held in replaced.items():
        for identity in held:
            yield profile, identity


def write_edges(
    directory: Path,
    links_path: Path,
    linking: Mapping[int, bool],
    now: str,
    *,
    replaced: Mapping[int, Mapping[int, tuple[str, str, str]]],
    multiline: bool = True,
) -> list[tuple[str, Path]]:
    """HAS_IDENTITY edges to identities that link, OBSERVED edges to blocked and saturated ones. The links of the
    profiles in `replaced` are theirs (profile node -> identity node -> (raw, source, rule_version)), not the
    scratch file's."""
    paths = {True: directory / "has_identity.csv", False: directory / "observed.csv"}
    with (
        links_path.open(encoding="utf-8", newline="") as source,
        paths[True].open("w", encoding="utf-8", newline="") as has_out,
        paths[False].open("w", encoding="utf-8", newline="") as observed_out,
    ):
        outs = {True: has_out, False: observed_out}
        for out in outs.values():
            out.write(",".join(EDGE_HEADER) + "\n")
        if multiline:  # a value spans lines: read the file as CSV
            for profile, identity, raw, source_name, rule_version in csv.reader(source):
                if int(profile) not in replaced:
                    outs[linking[int(identity)]].write(encode([int(profile), int(identity), raw, source_name,
                                                               rule_version, now, now]))  # fmt: skip
        else:  # one row a line: the two node ids are the first two cells, the rest is written as it is
            times = f",{cell(now)},{cell(now)}\n"
            for line in source:
                profile, identity, _ = line.split(",", 2)
                if int(profile) not in replaced:
                    outs[linking[int(identity)]].write(line[:-1] + times)
        for profile_node, held in replaced.items():
            for identity_node, (raw, source_name, rule_version) in held.items():
                outs[linking[identity_node]].write(
                    encode([profile_node, identity_node, raw, source_name, rule_version, now, now])
                )
    links_path.unlink()
    return [("HAS_IDENTITY", paths[True]), ("OBSERVED", paths[False])]


def read_links(links_path: Path, nodes: Mapping[int, Any]) -> dict[int, dict[int, tuple[str, str, str]]]:
    """The links of the profiles `nodes` in the scratch file: profile node -> identity node -> (raw, source,
    rule_version)."""
    found: dict[int, dict[int, tuple[str, str, str]]] = {node: {} for node in nodes}
    with links_path.open(encoding="utf-8", newline="") as source:
        for profile, identity, raw, source_name, rule_version in csv.reader(source):
            held = found.get(int(profile))
            if held is not None:
                held[int(identity)] = (raw, source_name, rule_version)
    return found
