"""Helpers of the bulk and maintenance tests: run the ingest use case, read the graph back as comparable sets."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from app.bulk.ingest import IngestReport, RejectsFile, ingest
from app.bulk.mappings import FieldMapping
from app.bulk.progress import Progress
from app.db.driver import AsyncDriver
from app.services.identity import IdentityService
from tests.conftest import MARKER_LABEL

Holding = tuple[str, str | None, str, str, bool]  # source, source_id, key, value, linking


def write_jsonl(path: Path, records: Iterable[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


async def load(
    service: IdentityService,
    paths: Sequence[Path],
    rejects: Path,
    *,
    mapping: FieldMapping | None = None,
    batch_size: int = 1000,
    workers: int = 2,
) -> IngestReport:
    return await ingest(
        service,
        list(paths),
        mapping=mapping,
        rejects=RejectsFile(rejects),
        progress=Progress(None, 0),
        batch_size=batch_size,
        workers=workers,
    )


async def wipe(driver: AsyncDriver) -> None:
    await driver.execute_query(f"MATCH (n) WHERE NOT n:SchemaMigration AND NOT n:{MARKER_LABEL} DETACH DELETE n")


async def holdings(driver: AsyncDriver) -> set[Holding]:
    """Every (profile, identity) edge by the profile's (source, source_id): comparable across runs."""
    records, _, _ = await driver.execute_query(
        "MATCH (p:Profile)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity) "
        "RETURN p.source AS source, p.source_id AS source_id, i.key AS key, i.value AS value, "
        "type(e) = 'HAS_IDENTITY' AS linking",
        routing_="r",
    )
    return {(r["source"], r["source_id"], r["key"], r["value"], r["linking"]) for r in records}


async def counts(driver: AsyncDriver) -> dict[str, int]:
    records, _, _ = await driver.execute_query(
        "CALL () { MATCH (p:Profile) RETURN count(p) AS profiles } "
        "CALL () { MATCH (i:Identity) RETURN count(i) AS identities } "
        "CALL () { MATCH ()-[e:HAS_IDENTITY|OBSERVED]->() RETURN count(e) AS edges } "
        "RETURN profiles, identities, edges",
        routing_="r",
    )
    return dict(records[0].data())


async def components(service: IdentityService) -> set[frozenset[tuple[str, str | None]]]:
    """The customers, each as the set of its profiles' (source, source_id)."""
    by_customer: dict[str, set[tuple[str, str | None]]] = defaultdict(set)
    async for row in service.export_rows(page_size=100):
        by_customer[row.customer_id].add((row.source, row.source_id))
    return {frozenset(members) for members in by_customer.values()}


def read_rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
