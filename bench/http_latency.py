"""Resolve through GraphQL over HTTP on loopback, beside the bare Cypher index lookup it wraps.

    .venv/bin/python -m bench.http_latency --profiles 20000 --rounds 1000

Loads generated profiles into a scratch Neo4j, starts a real `idgraph serve` process against it, then times,
interleaved round-robin: the bare index lookup of one identity over Bolt from this process, and the GraphQL
`resolve` of the same identity over HTTP (keep-alive client, one request at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

from app.auth import add_token
from app.config import REPO_ROOT, Settings
from app.db.driver import create_driver
from app.db.repository import Neo4jRepository
from app.db.schema import migrate
from app.domain.strategy import default_strategy
from app.services import IdentityService
from bench.engine_latency import load
from bench.harness import free_port, interleaved, scratch_database, table, write_section

RESOLVE = """query($key: String!, $value: String!) {
  resolve(identities: [{key: $key, value: $value}]) { status customer { id skills profiles { id } } }
}"""


async def run(uri: str, profiles: int, rounds: int) -> str:
    settings = replace(Settings.from_env({}), neo4j_uri=uri)
    driver = create_driver(settings)
    await migrate(driver, settings.neo4j_database)
    service = IdentityService(Neo4jRepository(driver, timeout_s=60.0), default_strategy(), b"bench-key")
    print(f"loading {profiles:,} generated profiles...", flush=True)
    rate, phones = await load(service, profiles)
    rng = random.Random(5)
    keys = [phones[rng.randrange(len(phones))] for _ in range(rounds + 200)]
    with tempfile.TemporaryDirectory() as var:
        token = add_token(Path(var) / "tokens.json", "bench", ["identity:read"])
        port = free_port()
        env = {**os.environ, "NEO4J_URI": uri, "IDGRAPH_VAR_DIR": var}
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as http:
                for _ in range(120):
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.5)
                headers = {"authorization": f"Bearer {token}"}

                async def index_lookup(n: int) -> object:
                    return await driver.execute_query(
                        "MATCH (i:Identity {key: $key, value: $value}) RETURN i.value AS value",
                        key=keys[n].key,
                        value=keys[n].value,
                        routing_="r",
                    )

                async def graphql_resolve(n: int) -> object:
                    variables = {"key": keys[n].key, "value": keys[n].value}
                    response = await http.post(
                        "/graphql", json={"query": RESOLVE, "variables": variables}, headers=headers
                    )
                    body = response.json()
                    if response.status_code != 200 or body.get("errors"):
                        raise RuntimeError(f"resolve failed: HTTP {response.status_code}")
                    return body

                print(f"timing {rounds:,} rounds of each call, interleaved...", flush=True)
                started = time.perf_counter()
                stats = await interleaved(
                    {"bare index lookup (Bolt, Cypher)": index_lookup, "GraphQL resolve over HTTP": graphql_resolve},
                    rounds,
                )
                elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    await driver.close()
    base = stats["bare index lookup (Bolt, Cypher)"].median_ms
    rows = [
        [s.name, f"{s.median_ms:.2f}", f"{s.p95_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.median_ms / base:.2f}x"]
        for s in stats.values()
    ]
    return (
        f"{profiles:,} generated profiles (loaded at {rate:,.0f}/s); {rounds:,} samples of each call, interleaved, "
        f"{elapsed:.0f} s in all; a real `idgraph serve` process, one request at a time.\n\n"
        + table(rows, ["call", "median ms", "p95 ms", "p99 ms", "median / index lookup"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    with scratch_database("http-latency") as uri:
        body = asyncio.run(run(uri, args.profiles, args.rounds))
    print(body)
    write_section(
        "http-latency",
        "Resolve through GraphQL over HTTP",
        f".venv/bin/python -m bench.http_latency --profiles {args.profiles} --rounds {args.rounds}",
        body,
    )


if __name__ == "__main__":
    main()
