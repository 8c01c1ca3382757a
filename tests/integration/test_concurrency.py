"""Concurrent writers on overlapping identities: one node per (key, value), no duplicate edges, and the
components the graph holds equal an in-memory union-find of what was written."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.db.driver import AsyncDriver
from app.domain.model import NormalizedIdentity, ProfileInput
from app.services.identity import IdentityService

pytestmark = pytest.mark.neo4j

WORKERS = 16
UPSERTS_PER_WORKER = 12


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def workload(seed: int) -> list[ProfileInput]:
    rng = random.Random(seed)
    items = []
    for n in range(UPSERTS_PER_WORKER):
        identities = [("phone_number", f"+1415555{rng.randrange(30):04d}")]
        if rng.random() < 0.7:
            identities.append(("email_address", f"user{rng.randrange(40)}@example.com"))
        if rng.random() < 0.3:  # the same number spelled another way
            identities.append(("phone_number", f"(415) 555-{rng.randrange(30):04d}"))
        # Some workers write the same source records as others: overlapping upserts of one profile.
        source_id = f"C-{rng.randrange(60)}" if rng.random() < 0.5 else f"W{seed}-{n}"
        items.append(ProfileInput("crm", tuple(identities), source_id=source_id))
    return items


async def test_sixteen_concurrent_writers_leave_a_consistent_graph(
    service: IdentityService, driver: AsyncDriver
) -> None:
    written = [workload(seed) for seed in range(WORKERS)]

    async def worker(items: list[ProfileInput]) -> None:
        for item in items:
            await service.upsert_profile(item)

    await asyncio.wait_for(asyncio.gather(*(worker(items) for items in written)), timeout=240)

    duplicates, _, _ = await driver.execute_query(
        "MATCH (i:Identity) WITH i.key AS k, i.value AS v, count(*) AS n WHERE n > 1 RETURN count(*) AS dup",
        routing_="r",
    )
    assert duplicates[0]["dup"] == 0
    duplicate_edges, _, _ = await driver.execute_query(
        "MATCH (p:Profile)-[r:HAS_IDENTITY|OBSERVED]->(i:Identity) WITH p, i, count(r) AS n WHERE n > 1 "
        "RETURN count(*) AS dup",
        routing_="r",
    )
    assert duplicate_edges[0]["dup"] == 0
    profiles_by_source, _, _ = await driver.execute_query(
        "MATCH (p:Profile) WITH p.source_id AS s, count(*) AS n WHERE n > 1 RETURN count(*) AS dup", routing_="r"
    )
    assert profiles_by_source[0]["dup"] == 0

    # Expected components: a union-find over source records and the normalized identities they carried.
    expected = UnionFind()
    for items in written:
        for item in items:
            for key, raw in item.identities:
                normalized = service.normalize(key, raw)
                assert isinstance(normalized, NormalizedIdentity)
                expected.union(f"src:{item.source_id}", f"id:{key}:{normalized.value}")
    records, _, _ = await driver.execute_query("MATCH (p:Profile) RETURN p.id AS id, p.source_id AS s", routing_="r")
    source_of = {r["id"]: r["s"] for r in records}
    assert set(source_of.values()) == {item.source_id for items in written for item in items}
    actual: dict[str, set[str]] = {}
    for profile_id, source_id in source_of.items():
        customer = await service.customer(profile_id)
        assert customer is not None
        actual[source_id] = {str(source_of[p.id]) for p in customer.profiles}
    for source_id, members in actual.items():
        assert members == {s for s in actual if expected.find(f"src:{s}") == expected.find(f"src:{source_id}")}
