"""Pathological shapes: an identity shared by 100,000 profiles, and cyclic components of 100 and 1,000 profiles.

    .venv/bin/python -m bench.pathological
    .venv/bin/python -m bench.pathological --profiles 10000 --shared 20000 --rings 100 300 --rounds 300   # quick

One scratch Neo4j, written by bench/importer.py (CSV files through Neo4j's offline importer, then the app's
migrations), holds --profiles generated profiles and:

- the hub: --shared profiles holding one phone number (+1 800 555 0199), each besides an email address of its
  own. It is far over the strategy's fan-out limit, so it is saturated as the app saturates it: it stops linking
  (OBSERVED edges, saturated=true) and a resolve through it answers AMBIGUOUS with a few candidates;
- rings (--rings): n profiles in a closed ring, profile k sharing a phone number with profile k+1 and an email
  address with profile k-1, so every profile holds two phone numbers and two email addresses and there are two
  paths between neighbours: 3n nodes in one component, the worst case for a walk that does not prune.

A real `idgraph serve` answers GraphQL over HTTP with IDGRAPH_MAX_COMPONENT_NODES raised to read the largest ring
whole (the default, 2,000 nodes, would cut a 1,000-profile ring short). Timed, interleaved: resolve through the
hub, beside a miss (a phone number nobody holds) and an ordinary known number; then resolve through each ring,
over GraphQL and by the service in this process. Counted with PROFILE: the db hits of the resolve statement
(cypher/resolve_snapshot.cypher) for each of those.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

from neo4j import AsyncDriver

from app.config import Settings
from app.db.driver import create_driver
from app.db.queries import query
from app.db.repository import MAX_LINKS_PER_PROFILE, Neo4jRepository
from app.db.schema import migrate
from app.domain.model import IdentityKey, ResolutionStatus
from app.domain.strategy import default_strategy
from app.services.identity import IdentityService
from bench import bulkload, importer
from bench.client import KeepAliveClient
from bench.datagen import records, sharing
from bench.harness import (
    Target,
    command_line,
    graphql_resolve,
    idgraph_serve,
    interleaved,
    local_server,
    record_targets,
    scratch_database,
    table,
    write_section,
)

HUB = "+1 800 555 0199"
HUB_E164 = "+18005550199"
MISS = "+1 999 555 {n:04d}"  # area code 999 is never generated
CANDIDATES = 5  # the service's max_candidates


def ring_phone(ring: int, k: int) -> str:
    return f"+1 917 {300 + ring} {k:04d}"


def ring(n: int, index: int) -> Iterator[dict[str, Any]]:
    """n profiles in a closed ring: profile k holds phones k-1 and k (shared with k-1 and k+1) and emails k and k+1."""
    for k in range(n):
        phones = (ring_phone(index, (k - 1) % n), ring_phone(index, k))
        emails = (f"ring{index}.{k}@example.test", f"ring{index}.{(k + 1) % n}@example.test")
        yield {
            "source": "crm",
            "source_id": f"ring{index}-{k}",
            "identities": [{"key": "phone_number", "value": v} for v in phones]
            + [{"key": "email_address", "value": v} for v in emails],
            "attributes": {},
        }


def _shapes(shared: int, rings: list[int]) -> Iterator[dict[str, Any]]:
    yield from sharing(shared, HUB, tag="hub")
    for index, n in enumerate(rings):
        yield from ring(n, index)


def _db_hits(plan: Any) -> int:
    return int(plan.get("dbHits", 0)) + sum(_db_hits(child) for child in plan.get("children", []))


async def db_hits(driver: AsyncDriver, phone: str, max_nodes: int) -> int:
    """Db hits of the resolve statement for one normalized phone number, from PROFILE."""
    async with driver.session() as session:
        result = await session.run(
            "PROFILE " + query("resolve_snapshot"),
            identities=[{"key": "phone_number", "value": phone}],
            max_nodes=max_nodes,
            candidates=CANDIDATES,
            max_links=MAX_LINKS_PER_PROFILE,
        )
        summary = await result.consume()
    return _db_hits(summary.profile or {})


async def check(service: IdentityService, rings: list[int]) -> None:
    """The shapes are what they should be: the hub stopped linking, each ring is one whole customer."""
    hub = await service.resolve([("phone_number", HUB)])
    if hub.status is not ResolutionStatus.AMBIGUOUS or not any(i.reason == "SATURATED" for i in hub.ignored):
        raise SystemExit(f"the hub's phone number should be saturated (AMBIGUOUS), it resolved {hub.status}")
    for index, n in enumerate(rings):
        found = await service.resolve([("phone_number", ring_phone(index, 0))])
        if found.customer is None or len(found.customer.profiles) != n or found.customer.truncated:
            raise SystemExit(f"the ring of {n} should resolve to one whole customer of {n} profiles")


async def run(uri: str, args: argparse.Namespace) -> tuple[str, list[Target]]:
    settings = replace(Settings.from_env({}), neo4j_uri=uri)
    strategy = default_strategy()
    total = args.profiles + args.shared + sum(args.rings)
    server = local_server(uri)
    if server is None:
        raise SystemExit("bench.pathological imports its graph into a scratch neo4j-local of its own")
    print(f"importing {args.profiles:,} generated profiles, the hub and the rings offline...", flush=True)
    source = itertools.chain(records(args.profiles), _shapes(args.shared, args.rings))
    # `known`: ordinary phone numbers, of the generated profiles only (batches of 5,000 records)
    loaded = await asyncio.to_thread(importer.load, server, source, strategy, sample_first=args.profiles)
    driver = create_driver(settings)
    await migrate(driver, settings.neo4j_database)
    max_nodes = max(2000, 3 * max(args.rings, default=0) + 100)
    service = IdentityService(
        Neo4jRepository(driver, token_key=b"bench-token-key", timeout_s=60.0),
        strategy,
        b"bench-key",
        max_component_nodes=max_nodes,
    )
    await bulkload.check_resolves(service, loaded)
    hits = [k.identity.value for k in loaded.known]
    if IdentityKey("phone_number", HUB_E164) not in loaded.saturated:
        raise SystemExit("the hub's phone number was not saturated by the load")
    await check(service, args.rings)
    load_s = loaded.seconds
    print(f"  {total:,} profiles in {load_s:.0f} s", flush=True)
    rng = random.Random(4)

    count = max(args.rounds, args.ring_rounds) + args.warmup
    async with (
        idgraph_serve(uri, IDGRAPH_MAX_COMPONENT_NODES=str(max_nodes)) as served,
        KeepAliveClient(served.base_url, timeout=60.0) as http,
    ):

        def resolving(values: list[str]) -> Callable[[int], Awaitable[object]]:
            async def call(n: int) -> object:
                return await graphql_resolve(http, served, "phone_number", values[n % len(values)])

            return call

        shapes = {
            f"hub: a phone number held by {args.shared:,} profiles (saturated)": resolving([HUB]),
            "miss: a phone number nobody holds": resolving([MISS.format(n=n % 10000) for n in range(count)]),
            "hit: an ordinary known phone number": resolving([hits[rng.randrange(len(hits))] for _ in range(count)]),
        }
        print(f"timing {args.rounds:,} rounds of hub / miss / hit, interleaved...", flush=True)
        stats = await interleaved(shapes, args.rounds, warmup=args.warmup)

        def in_process(values: list[str]) -> Callable[[int], Awaitable[object]]:
            async def call(n: int) -> object:
                return await service.resolve([("phone_number", values[n % len(values)])])

            return call

        ring_calls: dict[str, Callable[[int], Awaitable[object]]] = {}
        for index, n in enumerate(args.rings):
            phones = [ring_phone(index, k) for k in range(n)]
            ring_calls[f"ring of {n:,}: GraphQL over HTTP"] = resolving(phones)
            ring_calls[f"ring of {n:,}: the service in-process (no HTTP, no GraphQL)"] = in_process(phones)
        print(f"timing {args.ring_rounds:,} rounds of each ring, interleaved...", flush=True)
        ring_stats = await interleaved(ring_calls, args.ring_rounds, warmup=2)

    profiled = {
        "hub": await db_hits(driver, HUB_E164, max_nodes),
        "miss": await db_hits(driver, "+19995550000", max_nodes),
        "hit": await db_hits(driver, hits[0], max_nodes),
    }
    ring_hits = {
        n: await db_hits(driver, "+1917" + f"{300 + index}0000", max_nodes) for index, n in enumerate(args.rings)
    }
    await driver.close()

    miss = stats["miss: a phone number nobody holds"].median_ms
    hub_name = next(iter(stats))
    hub_ratio = stats[hub_name].median_ms / miss
    shape_rows = [
        [st.name, *st.cells(), f"{st.median_ms / miss:.2f}x", f"{hit:,}"]
        for st, hit in zip(stats.values(), profiled.values(), strict=True)
    ]
    per_profile = {n: ring_hits[n] / n for n in args.rings}
    over_http = {n: ring_stats[f"ring of {n:,}: GraphQL over HTTP"] for n in args.rings}
    inside = {n: ring_stats[f"ring of {n:,}: the service in-process (no HTTP, no GraphQL)"] for n in args.rings}
    small, big = min(args.rings), max(args.rings)
    growth = per_profile[big] / per_profile[small]
    ms_growth = (over_http[big].median_ms / big) / (over_http[small].median_ms / small)
    inside_growth = (inside[big].median_ms / big) / (inside[small].median_ms / small)
    ring_rows = [
        row
        for n in args.rings
        for row in (
            [over_http[n].name, *over_http[n].cells(), f"{over_http[n].median_ms / n:.3f}", f"{ring_hits[n]:,}"],
            [inside[n].name, *inside[n].cells(), f"{inside[n].median_ms / n:.3f}", "-"],
        )
    ]
    body = "\n".join(
        [
            f"{total:,} profiles in one scratch Neo4j, imported offline in {load_s:.0f} s: {args.profiles:,} "
            f"generated, {args.shared:,} holding one phone number (the hub), and rings of "
            f"{', '.join(f'{n:,}' for n in args.rings)}. "
            f"A real `idgraph serve` with IDGRAPH_MAX_COMPONENT_NODES={max_nodes:,}, one request at a time; "
            "db hits from PROFILE of the resolve statement (cypher/resolve_snapshot.cypher) for the same lookup.",
            "",
            f"### An identity held by {args.shared:,} profiles",
            "",
            f"{args.rounds:,} samples of each GraphQL resolve over HTTP, interleaved. The hub is saturated: it answers "
            f"AMBIGUOUS with up to {CANDIDATES} candidate customers; the miss answers NOT_FOUND.",
            "",
            table(shape_rows, ["resolve through", "median ms", "p95 ms", "p99 ms", "median / miss", "db hits"]),
            "",
            f"Hub / miss, median: **{hub_ratio:.2f}x** (target: at most 1.5x, as fast as a miss).",
            "",
            "### Cyclic components",
            "",
            f"{args.ring_rounds:,} samples of each resolve (the whole customer; over GraphQL with every profile id), "
            "interleaved, a different phone number of the ring each time; beside the GraphQL resolve over HTTP, the "
            "same resolve by the service in this process, to tell the cost of the GraphQL layer from the rest.",
            "",
            table(ring_rows, ["resolve", "median ms", "p95 ms", "p99 ms", "median ms per profile", "db hits"]),
            "",
            f"Ring of {big:,} / ring of {small:,}, per profile: GraphQL resolve median **{ms_growth:.2f}x** (the "
            f"service in-process: {inside_growth:.2f}x); db hits **{growth:.2f}x**, {per_profile[big]:.1f} per "
            "profile (target: at most 1.2x each, linear).",
        ]
    )
    targets = [
        Target(
            f"resolve through an identity held by {args.shared:,} / a miss, median",
            "<= 1.5x",
            f"{hub_ratio:.2f}x",
            hub_ratio <= 1.5,
        ),
        Target(
            f"GraphQL resolve median per profile, ring of {big:,} / ring of {small:,}",
            "<= 1.2x",
            f"{ms_growth:.2f}x",
            ms_growth <= 1.2,
        ),
        Target(f"db hits per profile, ring of {big:,} / ring of {small:,}", "<= 1.2x", f"{growth:.2f}x", growth <= 1.2),
    ]
    return body, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=10_000, help="generated profiles besides the shapes (10000)")
    parser.add_argument("--shared", type=int, default=100_000, help="profiles holding the hub's number (100000)")
    parser.add_argument("--rings", type=int, nargs="+", default=[100, 1000], help="ring sizes (100 1000)")
    parser.add_argument("--rounds", type=int, default=1000, help="timed samples of hub / miss / hit (1000)")
    parser.add_argument("--ring-rounds", type=int, default=10, help="timed samples of each ring (10)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed rounds first (100)")
    args = parser.parse_args()
    if len(args.rings) < 2:
        parser.error("give at least two ring sizes")
    with scratch_database("pathological", heap="1g", pagecache_mb=512, tx_memory_mb=2048, reuse_given=False) as uri:
        body, targets = asyncio.run(run(uri, args))
    print(body)
    command = command_line("bench.pathological", args)
    write_section("pathological", "Pathological shapes", command, body)
    record_targets("pathological", command, targets)


if __name__ == "__main__":
    main()
