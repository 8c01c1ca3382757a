"""The benchmarks' graph loaders write the graph the service's ingest path writes, so what they measure is the app.

bench/importer.py (CSV files through Neo4j's offline importer into a stopped neo4j-local) and bench/bulkload.py
(big UNWIND batches through Bolt) each store a sample of generated records (blocked and invalid values, households,
one value shared past the fan-out limit) that the service has stored before them, and the two graphs are compared:
the same profiles, identities and edges with the same properties (values too, but for ids and times).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.config import Settings
from app.db import localserver
from app.db.driver import create_driver
from app.db.repository import Neo4jRepository
from app.domain.strategy import default_strategy
from app.services.identity import IdentityService
from bench import bulkload, importer
from bench import ingest as ingest_bench

pytestmark = pytest.mark.neo4j


def test_the_offline_importer_writes_the_graph_the_service_writes(own_server: localserver.LocalServer) -> None:
    asyncio.run(importer.migrated(own_server.uri))
    importer.check_shape(own_server, default_strategy(), sample=200)  # SystemExit naming the differences


def test_the_bolt_bulk_loader_writes_the_graph_the_service_writes(own_server: localserver.LocalServer) -> None:
    async def check() -> None:
        driver = create_driver(Settings.from_env({"NEO4J_URI": own_server.uri}))
        try:
            await driver.execute_query("MATCH (n) DETACH DELETE n")
            await importer.migrated(own_server.uri)
            service = IdentityService(
                Neo4jRepository(driver, token_key=b"bench-token-key", timeout_s=60.0), default_strategy(), b"bench-key"
            )
            await bulkload.check_shape(driver, service, sample=200)
        finally:
            await driver.close()

    asyncio.run(check())


def test_an_offline_import_refuses_a_running_server(own_server: localserver.LocalServer) -> None:
    with pytest.raises(localserver.LocalDatabaseError, match="stop it before an offline import"):
        localserver.offline_import(own_server, [], [])


def test_the_resolve_cpu_breakdown_times_every_layer(own_server: localserver.LocalServer) -> None:
    """bench/resolve_cpu.py wraps entry points of strawberry and of the app; a renamed one must fail here, not
    silently time nothing. Every layer of the breakdown is measured, and the wrappers are gone afterwards."""
    import argparse
    import re

    import strawberry.schema.schema as strawberry_schema

    from bench import resolve_cpu

    execute = strawberry_schema.Schema.execute

    async def breakdown() -> str:
        driver = create_driver(Settings.from_env({"NEO4J_URI": own_server.uri}))
        try:
            await driver.execute_query("MATCH (n) DETACH DELETE n")
        finally:
            await driver.close()
        return await resolve_cpu.measure(own_server.uri, argparse.Namespace(profiles=300, rounds=30, warmup=5))

    body = asyncio.run(breakdown())
    figures = dict(re.findall(r"^\| \**(.+?)\** \| \**([0-9,]+)\** \|$", body, re.MULTILINE))
    layers = [name for name in figures if "in all" not in name and "outside the app" not in name]
    assert len(layers) == 8, figures
    assert int(figures["repository read: driver, Neo4j I/O callbacks, record decoding"].replace(",", "")) > 0
    assert int(figures["GraphQL resolve, in all"].replace(",", "")) > 0
    assert sum(int(figures[name].replace(",", "")) > 0 for name in layers) >= 6, figures  # rounding may zero one
    assert "GraphQL / REST, CPU per request" in body
    assert strawberry_schema.Schema.execute is execute


def test_the_idempotent_floor_of_the_ingest_benchmark_is_idempotent(
    own_server: localserver.LocalServer, tmp_path: Path
) -> None:
    """bench/ingest.py's floor phase claims the least a re-runnable load does: one profile per (source, source_id),
    one identity per raw (key, value), one edge per pair, and nothing new when the same file is loaded again."""
    path = tmp_path / "floor.jsonl"
    ingest_bench.generate(path, 600, seed=3)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    wanted = {
        "profiles": len({(r["source"], r["source_id"]) for r in rows}),
        "identities": len({(i["key"], i["value"]) for r in rows for i in r["identities"]}),
        "edges": len({(r["source"], r["source_id"], i["key"], i["value"]) for r in rows for i in r["identities"]}),
    }
    counts = """
        MATCH (p:Profile) WITH count(p) AS profiles
        MATCH (i:Identity) WITH profiles, count(i) AS identities
        OPTIONAL MATCH (:Profile)-[e:HAS_IDENTITY]->(:Identity)
        RETURN profiles, identities, count(e) AS edges
    """

    async def load_twice() -> list[dict[str, int]]:
        driver = create_driver(Settings.from_env({"NEO4J_URI": own_server.uri}))
        try:
            await driver.execute_query("MATCH (n) DETACH DELETE n")
            await importer.migrated(own_server.uri)
            seen = []
            for _ in range(2):
                await ingest_bench.statement_load(driver, path, 100, 2, ingest_bench.FLOOR, ingest_bench.floor_params)
                found, _, _ = await driver.execute_query(counts)
                seen.append(found[0].data())
            await driver.execute_query("MATCH (n) DETACH DELETE n")
            return seen
        finally:
            await driver.close()

    first, second = asyncio.run(load_twice())
    assert first == wanted
    assert second == wanted
