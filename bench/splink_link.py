"""The batch linker issue 17 compares `idgraph import` + `idgraph export` with: Splink 5 (DuckDB backend),
deterministic linkage of the same JSON Lines file, clustered into connected components.

    .venv/bin/pip install -e '.[bench]'     # splink is a bench extra only
    .venv/bin/python -m bench.import_load --records 375000 --export --splink

The pipeline, timed whole from the file to the clusters:

1. normalize (in `workers` processes, as `idgraph import --workers` does): phone numbers with idgraph's own E164
   rule (app/domain/normalize.py: `phonenumbers` with the strategy's default region, the international prefixes
   written 00 or 011 read as +, kept when possible with the area code), e-mail addresses lower-cased and stripped
   (kept when they hold an @), account ids stripped; one row per (record, value);
2. the rules idgraph applies that need no graph, in DuckDB SQL: the strategy's blocked values and values held by more
   records than `max_profiles_per_identity` (the fan-out limit) do not link; with `contested`, a phone or e-mail whose
   holders hold more than one account id does not link either (issue 19's rule, when the strategy has it on);
3. Splink's `deterministic_link` on equal values (one blocking rule per key, and one on the record, so a record's
   rows are one), then `cluster_pairwise_predictions_at_threshold` (connected components).

`compare` matches the clusters against `idgraph export`'s customers, record by record.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.model import Normalization
from app.domain.normalize import RuleRefused, apply_rule
from app.domain.strategy import Strategy, default_strategy

CHUNK = 20_000  # lines per task of the normalizing workers


@dataclass(frozen=True)
class Linkage:
    seconds: float
    normalize_s: float
    link_s: float
    records: int  # records with at least one usable value
    clusters: dict[str, int]  # record key (source \x1f source_id) -> cluster id


_region = "US"


def _init(region: str) -> None:
    global _region
    _region = region


def _normalize(lines: list[str]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for line in lines:
        record = json.loads(line)
        key = f"{record['source']}\x1f{record.get('source_id') or ''}"
        for identity in record.get("identities") or ():
            raw = str(identity.get("value", "")).strip()
            kind = identity.get("key")
            if kind == "phone_number":
                try:  # idgraph's own E164 rule (app/domain/normalize.py), which is phonenumbers' parse and format
                    rows.append((key, kind, apply_rule(Normalization.E164, raw, _region)))
                except RuleRefused:
                    continue
            elif kind == "email_address":
                value = raw.lower()
                if "@" in value:
                    rows.append((key, kind, value))
            elif kind == "account_id" and raw:
                rows.append((key, kind, raw))
    return rows


def _chunks(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8") as lines:
        chunk: list[str] = []
        for line in lines:
            if line.strip():
                chunk.append(line)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def link(path: Path, *, workers: int = 2, contested: bool = False, strategy: Strategy | None = None) -> Linkage:
    import duckdb
    import pyarrow as pa
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    strategy = strategy or default_strategy()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers, _init, (strategy.default_region,)) as pool:
        rows = [row for part in pool.imap(_normalize, _chunks(path)) for row in part]
    normalized = time.perf_counter()

    con = duckdb.connect()
    columns = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    con.register("held_arrow", pa.table({"record": columns[0], "key": columns[1], "value": columns[2]}))
    con.execute("CREATE TABLE held AS SELECT * FROM held_arrow")
    blocked = sorted(strategy.protections.blocked_values)
    limit = strategy.protections.max_profiles_per_identity
    con.execute(
        """
        CREATE TABLE linking AS
        WITH holders AS (
            SELECT key, value, count(DISTINCT record) AS n FROM held GROUP BY key, value
        ), contested AS (
            SELECT DISTINCT h.key, h.value FROM held h JOIN held a ON a.record = h.record AND a.key = 'account_id'
            WHERE h.key <> 'account_id' GROUP BY h.key, h.value HAVING count(DISTINCT a.value) > 1
        )
        SELECT DISTINCT held.record, held.key, held.value FROM held JOIN holders USING (key, value)
        WHERE NOT list_contains(?, held.value)
          AND (? = 0 OR holders.n <= ?)
          AND (NOT ? OR (held.key, held.value) NOT IN (SELECT (key, value) FROM contested))
        """,
        [blocked, limit, limit, contested],
    )
    # Materialized, with ids in a fixed order: a lazy relation would be computed again by each of Splink's steps,
    # and row_number() over an unordered parallel scan numbers the rows differently each time.
    con.execute(
        """
        CREATE TABLE held_rows AS
        SELECT row_number() OVER (ORDER BY record, key, value) AS unique_id, record,
               CASE WHEN key = 'phone_number' THEN value END AS phone_number,
               CASE WHEN key = 'email_address' THEN value END AS email_address,
               CASE WHEN key = 'account_id' THEN value END AS account_id
        FROM (SELECT record, key, value FROM linking
              UNION ALL SELECT DISTINCT record, 'none', NULL FROM held)
        """
    )
    frame = con.table("held_rows")
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("record"),
            block_on("phone_number"),
            block_on("email_address"),
            block_on("account_id"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register(frame, dataset_display_name="held_input"), settings)
    pairs = linker.inference.deterministic_link()
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs)
    result = con.execute(f"SELECT DISTINCT record, cluster_id FROM {clustered.physical_name}").fetchall()
    finished = time.perf_counter()
    clusters = {str(record): hash(cluster) for record, cluster in result}
    return Linkage(finished - started, normalized - started, finished - normalized, len(clusters), clusters)


@dataclass(frozen=True)
class Agreement:
    compared: int  # records in both
    same: bool
    differing_records: int  # records whose cluster (as a set of records) differs between the two


def compare(linkage: Linkage, export_path: Path) -> Agreement:
    """Each record's cluster as a set of records, from Splink and from `idgraph export` (customer_id), compared."""
    ours: dict[str, str] = {}
    with export_path.open(encoding="utf-8") as lines:
        for line in lines:
            row: dict[str, Any] = json.loads(line)
            ours[f"{row['source']}\x1f{row.get('source_id') or ''}"] = str(row["customer_id"])
    common = set(ours) & set(linkage.clusters)
    theirs_members: dict[int, set[str]] = defaultdict(set)
    ours_members: dict[str, set[str]] = defaultdict(set)
    for record in common:
        theirs_members[linkage.clusters[record]].add(record)
        ours_members[ours[record]].add(record)
    differing = sum(1 for record in common if theirs_members[linkage.clusters[record]] != ours_members[ours[record]])
    return Agreement(len(common), differing == 0 and len(common) == len(ours), differing)
