"""Resolve through GraphQL over HTTP on loopback at two graph sizes, beside its baselines; throughput; memory.

    .venv/bin/python -m bench.http_latency                       # 10,000 and 1,000,000 profiles
    .venv/bin/python -m bench.http_latency --profiles 10000 --large 50000 --rounds 500 --seconds 5   # quick check

Two scratch Neo4j servers run side by side: one holds --profiles generated profiles, the other --large (the same
generator and seed: the small graph is the first records of the large one). A graph of 100,000 profiles or more is
written by bench/importer.py (CSV files through Neo4j's offline importer, then the app's migrations), a smaller one
by bench/bulkload.py (through Bolt); both write the graph the service's ingest path writes, as
tests/e2e/test_bench_loaders.py checks, so the two graphs differ only in size. Each graph is checked by resolving a
loaded profile through the service.
Two servers rather than one graph grown from small to large: both sizes are then sampled interleaved, round-robin,
in the same minutes, so the noise of a shared machine falls on both alike and their ratio means something (a grown
graph would measure the two sizes minutes apart). A real `idgraph serve` child process runs against each.

1. Latency: --rounds interleaved rounds of, on each graph, the bare Cypher index lookup of one identity from this
   process (driver.execute_query, the driver's standard call, and an auto-committed session.run, its cheapest: the
   targets' baseline) and the GraphQL resolve of the same phone number over HTTP as issue 17 measures it (a
   keep-alive connection of Python's http.client, one request at a time, the customer's id, skills, profile ids
   and identities), with the shorter query of the other benchmarks (no identities, bench/client.py) as a side
   figure; on the large graph also the calls that do not depend on the graph: the bare Bolt round trip
   (RETURN 1), the HTTP round trip (GET /healthz), and the shorter resolve sent with httpx, to show what a
   heavier client adds.
2. Writes: --write-rounds upsertProfile mutations over HTTP (a new record with a phone number of the large graph),
   interleaved with the index lookup.
3. Throughput on the large graph: 1, 8 and 32 concurrent clients (--clients), each with a keep-alive connection
   of its own, for --seconds each: resolves/s, latency percentiles, errors. The clients run in this process, on
   the same cores as the service and Neo4j.
4. Memory: the RSS of the large graph's `idgraph serve` process (VmRSS sampled during the throughput runs, VmHWM),
   the Neo4j heap in use (JMX memory bean) and the RSS of the Neo4j JVM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import httpx
from neo4j import AsyncDriver

from app.config import Settings
from app.db.driver import create_driver
from app.db.repository import Neo4jRepository
from app.db.schema import migrate
from app.domain.model import IdentityKey
from app.domain.strategy import default_strategy
from app.services.identity import IdentityService
from bench import bulkload, importer
from bench.client import KeepAliveClient
from bench.datagen import records
from bench.harness import (
    RESOLVE,
    Served,
    Stats,
    Target,
    command_line,
    graphql_data,
    graphql_resolve,
    idgraph_serve,
    interleaved,
    local_server,
    neo4j_heap_mb,
    neo4j_pid,
    process_memory_mb,
    record_targets,
    scratch_database,
    table,
    write_section,
)

UPSERT = """mutation($source: String!, $sourceId: String!, $phone: String!) {
  upsertProfile(input: {source: $source, sourceId: $sourceId, identities: [{key: "phone_number", value: $phone}]}) {
    created customer { id }
  }
}"""

LARGE_PAGECACHE_MB = 3072  # the store of 1M generated profiles is about ... MiB: all of it stays in memory

INDEX_LOOKUP = "MATCH (i:Identity {key: $key, value: $value}) RETURN i.value AS value"
LOOKUP = "bare index lookup (Bolt, Cypher)"  # driver.execute_query, the driver's standard call
AUTOCOMMIT = "bare index lookup, auto-commit session.run"  # the driver's cheapest call: the baseline of the targets
# Issue 17's yardstick: a plain keep-alive client (Python's http.client) and a query selecting the customer's id,
# skills, profile ids and identities. The shorter query through bench/client.py is a side figure.
YARDSTICK = """query($key: String!, $value: String!) {
  resolve(identities: [{key: $key, value: $value}]) {
    status customer { id skills profiles { id } identities { key value } }
  }
}"""
RESOLVE_CALL = "GraphQL resolve over HTTP (http.client, with identities)"
# Side figures, timed in one round of every SIDE_EVERY: the Bolt and HTTP round trips, the driver's standard call, a
# heavier HTTP client and the shorter query. The targets' calls (auto-commit lookup, resolve) are timed every round.
SIDE_CALLS = ("(RETURN 1)", "(GET /healthz)", "(Bolt, Cypher)", "without identities", "httpx client")
SIDE_EVERY = 10


def size_label(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1M, 50000 -> 50k."""
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1000 and n % 100 == 0:
        return f"{n / 1000:g}k"
    return f"{n:,}"


@dataclass
class Graph:
    """One scratch server: its size, driver, service (for the load's sanity check) and lookup keys."""

    size: int
    uri: str
    driver: AsyncDriver
    service: IdentityService
    load_seconds: float = 0.0
    keys: list[IdentityKey] = field(default_factory=list)

    @property
    def label(self) -> str:
        return size_label(self.size)


# Smaller graphs load faster through Bolt than through a stop, an offline import and a restart of their server.
OFFLINE_FROM = 100_000


@contextlib.asynccontextmanager
async def graph(uri: str, size: int) -> AsyncIterator[Graph]:
    """A graph of `size` generated profiles at `uri`: imported offline (bench/importer.py) into a scratch neo4j-local
    of ours from OFFLINE_FROM profiles on, else bulk-loaded through Bolt (bench/bulkload.py). Both loaders write the
    graph the service's ingest path writes: tests/e2e/test_bench_loaders.py holds them to it."""
    settings = replace(Settings.from_env({}), neo4j_uri=uri)
    strategy = default_strategy()
    server = local_server(uri)
    loaded: bulkload.Loaded | None = None
    if server is not None and size >= OFFLINE_FROM:
        print(f"importing {size:,} generated profiles offline...", flush=True)
        loaded = await asyncio.to_thread(importer.load, server, records(size), strategy)
    driver = create_driver(settings)
    try:
        await migrate(driver, settings.neo4j_database)
        service = IdentityService(
            Neo4jRepository(driver, token_key=b"bench-token-key", timeout_s=60.0), strategy, b"bench-key"
        )
        if loaded is None:
            print(f"bulk-loading {size:,} generated profiles...", flush=True)
            loaded = await bulkload.load(driver, records(size), service.strategy)
        await bulkload.check_resolves(service, loaded)
        print(f"  {loaded.profiles:,} profiles in {loaded.seconds:.0f} s ({loaded.rate:,.0f}/s)", flush=True)
        yield Graph(size, uri, driver, service, loaded.seconds, [k.identity for k in loaded.known])
    finally:
        await driver.close()


def plain_connection(served: Served) -> HTTPConnection:
    """A keep-alive http.client connection to `served` (closed with the process: the benchmark ends then)."""
    parts = urlsplit(served.base_url)
    return HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30.0)


def plain_resolve(conn: HTTPConnection, served: Served, key: str, value: str) -> dict[str, Any]:
    """The yardstick's resolve: one POST on a keep-alive http.client connection (blocking: one request at a time)."""
    body = json.dumps({"query": YARDSTICK, "variables": {"key": key, "value": value}})
    conn.request("POST", "/graphql", body, {"content-type": "application/json", **served.headers})
    reply = conn.getresponse()
    return graphql_data(reply.status, json.loads(reply.read()), "resolve")


def lookup_calls(
    g: Graph,
    served: Served,
    http: KeepAliveClient,
    plain: HTTPConnection,
    count: int,
    *,
    baselines: httpx.AsyncClient | None,
) -> dict[str, Callable[[int], Awaitable[object]]]:
    """The calls timed on one graph; with `baselines` (an httpx client of the same server), also those that do not
    depend on the graph: the Bolt and HTTP round trips and the resolve sent with httpx."""
    rng = random.Random(5)
    keys = [g.keys[rng.randrange(len(g.keys))] for _ in range(count)]

    async def bolt(n: int) -> object:
        return await g.driver.execute_query("RETURN 1", routing_="r")

    async def index_lookup(n: int) -> object:
        return await g.driver.execute_query(INDEX_LOOKUP, key=keys[n].key, value=keys[n].value, routing_="r")

    async def index_lookup_autocommit(n: int) -> object:
        async with g.driver.session(default_access_mode="READ") as session:
            result = await session.run(INDEX_LOOKUP, key=keys[n].key, value=keys[n].value)
            return [record async for record in result]

    async def resolve(n: int) -> object:
        return plain_resolve(plain, served, keys[n].key, keys[n].value)

    async def resolve_short(n: int) -> object:
        return await graphql_resolve(http, served, keys[n].key, keys[n].value)

    async def healthz(n: int) -> object:
        reply = await http.get("/healthz")
        if reply.status != 200:
            raise RuntimeError(f"GET /healthz: HTTP {reply.status}")
        return reply

    async def resolve_httpx(n: int) -> object:
        assert baselines is not None
        variables = {"key": keys[n].key, "value": keys[n].value}
        response = await baselines.post(
            "/graphql", json={"query": RESOLVE, "variables": variables}, headers=served.headers
        )
        return graphql_data(response.status_code, response.json(), "resolve")

    calls: dict[str, Callable[[int], Awaitable[object]]] = {}
    if baselines is not None:
        calls[f"{g.label}: Bolt round trip (RETURN 1)"] = bolt
        calls[f"{g.label}: HTTP round trip (GET /healthz)"] = healthz
    calls[f"{g.label}: {LOOKUP}"] = index_lookup
    calls[f"{g.label}: {AUTOCOMMIT}"] = index_lookup_autocommit
    calls[f"{g.label}: {RESOLVE_CALL}"] = resolve
    calls[f"{g.label}: GraphQL resolve over HTTP, bench/client.py, without identities"] = resolve_short
    if baselines is not None:
        calls[f"{g.label}: GraphQL resolve over HTTP, httpx client"] = resolve_httpx
    return calls


@dataclass(frozen=True)
class Level:
    clients: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str
    peak_rss_mb: float  # highest VmRSS of the service sampled during the run
    peak_heap_mb: dict[str, float]  # Neo4j heap (used, committed, max) when the highest use was sampled

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


async def throughput(g: Graph, served: Served, clients: int, seconds: float) -> Level:
    """`clients` concurrent clients resolving random known phone numbers for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    peak_rss = 0.0
    rng = random.Random(clients)
    stop = time.perf_counter() + seconds

    async def client() -> None:
        async with KeepAliveClient(served.base_url) as http:
            while time.perf_counter() < stop:
                key = g.keys[rng.randrange(len(g.keys))]
                started = time.perf_counter()
                try:
                    await graphql_resolve(http, served, key.key, key.value)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, RuntimeError, ValueError) as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - started)

    peak_heap: dict[str, float] = {}

    async def sample_memory() -> None:
        nonlocal peak_rss, peak_heap
        for tick in itertools.count():
            peak_rss = max(peak_rss, process_memory_mb(served.pid).get("VmRSS", 0.0))
            if tick % 5 == 0:
                heap = await neo4j_heap_mb(g.driver)
                if heap.get("used", 0.0) > peak_heap.get("used", 0.0):
                    peak_heap = heap
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample_memory())
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    sampler.cancel()
    return Level(clients, elapsed, latencies, len(errors), errors[0] if errors else "", peak_rss, peak_heap)


def ms_row(s: Stats, base: float) -> list[str]:
    return [*s.cells(), f"{s.median_ms / base:.2f}x"]


async def run(small_uri: str, large_uri: str, args: argparse.Namespace) -> tuple[str, list[Target]]:
    async with (
        graph(large_uri, args.large) as large,
        graph(small_uri, args.profiles) as small,
        idgraph_serve(small.uri) as served_small,
        idgraph_serve(large.uri, scopes=("identity:read", "identity:write")) as served_large,
        KeepAliveClient(served_small.base_url) as http_small,
        KeepAliveClient(served_large.base_url) as http_large,
        httpx.AsyncClient(base_url=served_large.base_url, timeout=30.0) as httpx_large,
    ):
        plain_small, plain_large = plain_connection(served_small), plain_connection(served_large)
        rss_idle = process_memory_mb(served_large.pid).get("VmRSS", 0.0)
        count = args.rounds + args.warmup
        calls = {
            **lookup_calls(small, served_small, http_small, plain_small, count, baselines=None),
            **lookup_calls(large, served_large, http_large, plain_large, count, baselines=httpx_large),
        }
        print(f"timing {args.rounds:,} rounds of {len(calls)} calls, interleaved...", flush=True)
        started = time.perf_counter()
        side = {name: SIDE_EVERY for name in calls if name.endswith(SIDE_CALLS)}
        stats = await interleaved(calls, args.rounds, warmup=args.warmup, every=side)
        latency_s = time.perf_counter() - started

        rng = random.Random(9)
        phones = [large.keys[rng.randrange(len(large.keys))] for _ in range(args.write_rounds + args.warmup)]
        run_id = uuid.uuid4().hex[:8]

        async def upsert(n: int) -> object:
            variables = {"source": "ivr", "sourceId": f"bench-{run_id}-{n}", "phone": phones[n].value}
            reply = await http_large.post_json(
                "/graphql", {"query": UPSERT, "variables": variables}, served_large.headers
            )
            return graphql_data(reply.status, reply.json(), "upsertProfile")

        writes: dict[str, Stats] = {}
        if args.write_rounds:
            print(f"timing {args.write_rounds:,} upsertProfile calls over HTTP, interleaved...", flush=True)
            lookup = calls[f"{large.label}: {LOOKUP}"]
            writes = await interleaved(
                {f"{large.label}: {LOOKUP}": lookup, "upsertProfile over HTTP": upsert},
                args.write_rounds,
                warmup=min(args.warmup, 50),
            )

        levels: list[Level] = []
        for clients in args.clients:
            print(f"{clients} concurrent client(s) for {args.seconds:g} s...", flush=True)
            levels.append(await throughput(large, served_large, clients, args.seconds))
        service_memory = process_memory_mb(served_large.pid)
        jvm = neo4j_pid(large.uri)
        jvm_memory = process_memory_mb(jvm) if jvm is not None else {}
        small_load, large_load = small.load_seconds, large.load_seconds

    s, g = size_label(args.profiles), size_label(args.large)
    base = {label: stats[f"{label}: {AUTOCOMMIT}"].median_ms for label in (s, g)}
    resolve = {label: stats[f"{label}: {RESOLVE_CALL}"] for label in (s, g)}
    rows = [
        [name.split(": ")[0], name.split(": ")[1], f"{st.samples:,}", *ms_row(st, base[name.split(": ")[0]])]
        for name, st in stats.items()
    ]
    growth = resolve[g].median_ms / resolve[s].median_ms
    over_index = {label: resolve[label].median_ms / base[label] for label in (s, g)}
    body = [
        f"{args.profiles:,} and {args.large:,} generated profiles, each in a scratch Neo4j of its own, written by "
        f"bench/bulkload.py or, from {OFFLINE_FROM:,} profiles on, bench/importer.py ({size_label(args.profiles)} in "
        f"{small_load:.0f} s, {size_label(args.large)} in {large_load:.0f} s, normalization included); a real "
        f"`idgraph serve` process in front of each. {args.rounds:,} samples of each call, "
        f"interleaved round-robin across both graphs ({latency_s:.0f} s in all), one request at a time; the side "
        f"figures (Bolt and HTTP round trips, execute_query, the shorter query, httpx) in one round of every "
        f"{SIDE_EVERY}. The resolve of the "
        "targets is issue 17's yardstick: one keep-alive connection of Python's http.client and a query selecting the "
        "customer's id, skills, profile ids and identities, against the auto-committed bare lookup (session.run); "
        "the shorter query (no identities) goes through bench/client.py, a minimal asyncio keep-alive client, and "
        "the httpx row shows what a heavier client adds.",
        "",
        "### Latency",
        "",
        table(
            rows,
            ["graph", "call", "samples", "median ms", "p95 ms", "p99 ms", "median / auto-commit lookup (same graph)"],
        ),
        "",
        f"- GraphQL resolve / auto-committed bare index lookup, median: **{over_index[s]:.2f}x** at {s}, "
        f"**{over_index[g]:.2f}x** at {g} (target: at most 2x).",
        f"- GraphQL resolve at {g} / at {s}: median **{growth:.2f}x**, p95 "
        f"{resolve[g].p95_ms / resolve[s].p95_ms:.2f}x, p99 {resolve[g].p99_ms / resolve[s].p99_ms:.2f}x "
        "(target: median at most 1.3x).",
    ]
    if writes:
        w_base = writes[f"{g}: {LOOKUP}"].median_ms
        body += [
            "",
            f"### Writes at {g}",
            "",
            f"{args.write_rounds:,} `upsertProfile` mutations over HTTP (each a new IVR record holding a phone number "
            "of the graph, so it joins an existing customer), interleaved with the index lookup.",
            "",
            table(
                [[st.name, *ms_row(st, w_base)] for st in writes.values()],
                ["call", "median ms", "p95 ms", "p99 ms", "median / index lookup"],
            ),
        ]
    body += [
        "",
        f"### Throughput at {g}",
        "",
        f"Concurrent clients resolving random known phone numbers for {args.seconds:g} s each, each client with a "
        "keep-alive connection of its own; the clients run in the benchmark's process, on the same 2 cores as the "
        "service and Neo4j.",
        "",
        table(
            [
                [
                    str(lv.clients),
                    f"{len(lv.latencies):,}",
                    f"{lv.rate:,.0f}",
                    *(Stats.of("", lv.latencies).cells() if lv.latencies else ["-", "-", "-"]),
                    str(lv.errors),
                ]
                for lv in levels
            ],
            ["clients", "resolves", "resolves/s", "median ms", "p95 ms", "p99 ms", "errors"],
        ),
    ]
    errors = sum(lv.errors for lv in levels)
    if errors:
        body += ["", "First error: `" + next(lv.first_error for lv in levels if lv.errors) + "`"]
    body += [
        "",
        "### Memory",
        "",
        table(
            [
                ["`idgraph serve`, RSS before the throughput runs", f"{rss_idle:,.0f}"],
                *(
                    [f"`idgraph serve`, highest RSS sampled with {lv.clients} client(s)", f"{lv.peak_rss_mb:,.0f}"]
                    for lv in levels
                ),
                ["`idgraph serve`, peak RSS of the process (VmHWM)", f"{service_memory.get('VmHWM', 0):,.0f}"],
                *(
                    [
                        f"Neo4j heap, highest use sampled with {lv.clients} client(s): used / committed / max (JMX)",
                        " / ".join(f"{lv.peak_heap_mb.get(k, 0):,.0f}" for k in ("used", "committed", "max")),
                    ]
                    for lv in levels
                    if lv.peak_heap_mb
                ),
                [
                    "Neo4j JVM, RSS / peak RSS (VmHWM)",
                    f"{jvm_memory.get('VmRSS', 0):,.0f} / {jvm_memory.get('VmHWM', 0):,.0f}",
                ],
            ],
            ["process", "MiB"],
        ),
    ]
    targets = [
        *(
            Target(
                f"GraphQL resolve / auto-committed index lookup, median, {label}",
                "<= 2x",
                f"{over_index[label]:.2f}x",
                over_index[label] <= 2,
            )
            for label in (s, g)
        ),
        Target(f"resolve at {g} / resolve at {s}, median", "<= 1.3x", f"{growth:.2f}x", growth <= 1.3),
        Target(
            f"errors with {'/'.join(str(c) for c in args.clients)} concurrent clients at {g}",
            "0",
            "/".join(str(lv.errors) for lv in levels),
            errors == 0,
        ),
    ]
    return "\n".join(body), targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=10_000, help="profiles of the small graph (10000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="profiles of the large graph (1000000)")
    parser.add_argument("--rounds", type=int, default=10_000, help="timed samples of each call (10000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed rounds first (200)")
    parser.add_argument("--write-rounds", type=int, default=500, help="timed upsertProfile calls, 0 for none (500)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrency levels (1 8 32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrency level (10)")
    args = parser.parse_args()
    # Batches of 5,000 profiles need more transaction memory than neo4j-local's default. BENCH_NEO4J_URI is not
    # used: this needs two servers.
    with (
        scratch_database("http-small", heap="1g", pagecache_mb=256, reuse_given=False) as small_uri,
        scratch_database(
            "http-large",
            heap="2g",
            pagecache_mb=LARGE_PAGECACHE_MB,
            tx_memory_mb=1024,
            tx_timeout_s=600,
            reuse_given=False,
        ) as large_uri,
    ):
        body, targets = asyncio.run(run(small_uri, large_uri, args))
    print(body)
    command = command_line("bench.http_latency", args)
    write_section(
        "http-latency", "Resolve through GraphQL over HTTP: two graph sizes, writes, throughput, memory", command, body
    )
    record_targets("http-latency", command, targets)


if __name__ == "__main__":
    main()
