"""Engine latency on a loaded graph: resolve and upsert beside the bare Bolt round trip and index lookup.

    .venv/bin/python -m bench.engine_latency --profiles 100000 --rounds 2000

Loads generated profiles (bench/datagen.py) into a scratch Neo4j through the bulk path, then times, interleaved:
RETURN 1, the bare index lookup of one identity, resolve (hit, miss, switchboard) and a single-profile upsert.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import replace

from app.config import Settings
from app.db.driver import create_driver
from app.db.repository import Neo4jRepository
from app.db.schema import migrate
from app.domain.model import IdentityKey, NormalizedIdentity, ProfileInput
from app.domain.strategy import default_strategy
from app.domain.validation import profile_input_from_record
from app.services.identity import IdentityService
from bench.datagen import records
from bench.harness import interleaved, scratch_database, table, write_section


async def load(service: IdentityService, count: int, batch: int = 1000) -> tuple[float, list[IdentityKey]]:
    """Bulk-load `count` generated profiles; returns the rate and a sample of stored phone identities."""
    started = time.perf_counter()
    pending: list[ProfileInput] = []
    phones: list[IdentityKey] = []
    done = 0
    for record in records(count):
        item = profile_input_from_record(record)
        pending.append(item)
        if len(phones) < 20000 and random.random() < 0.2:
            for key, raw in item.identities:
                n = service.normalize(key, raw)
                if key == "phone_number" and isinstance(n, NormalizedIdentity) and "555" not in n.value[2:5]:
                    phones.append(n.identity)
        if len(pending) == batch:
            await service.ingest_batch(pending)
            done += len(pending)
            pending = []
            if done % 20000 == 0:
                print(f"  loaded {done:,} profiles ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)
    if pending:
        await service.ingest_batch(pending)
    return count / (time.perf_counter() - started), phones


async def run(uri: str, profiles: int, rounds: int) -> str:
    settings = replace(Settings.from_env({}), neo4j_uri=uri)
    driver = create_driver(settings)
    await migrate(driver, settings.neo4j_database)
    repo = Neo4jRepository(driver, token_key=b"bench-token-key", timeout_s=60.0)
    service = IdentityService(repo, default_strategy(), b"bench-key")
    print(f"loading {profiles:,} generated profiles...", flush=True)
    rate, phones = await load(service, profiles)
    rng = random.Random(3)
    hits = [phones[rng.randrange(len(phones))] for _ in range(rounds + 200)]
    misses = [IdentityKey("phone_number", f"+1999555{n:04d}") for n in range(rounds + 200)]

    async def bolt(n: int) -> object:
        return await driver.execute_query("RETURN 1", routing_="r")

    async def index_lookup(n: int) -> object:
        key = hits[n]
        return await driver.execute_query(
            "MATCH (i:Identity {key: $key, value: $value}) RETURN i.value AS value",
            key=key.key,
            value=key.value,
            routing_="r",
        )

    async def resolve_hit(n: int) -> object:
        return await service.resolve([(hits[n].key, hits[n].value)])

    async def resolve_miss(n: int) -> object:
        return await service.resolve([(misses[n].key, misses[n].value)])

    async def resolve_switchboard(n: int) -> object:
        return await service.resolve([("phone_number", "+18005550100")])

    async def upsert(n: int) -> object:
        return await service.upsert_profile(
            ProfileInput("ivr", (("phone_number", hits[n].value),), source_id=f"bench-call-{n}")
        )

    print(f"timing {rounds:,} rounds of each call, interleaved...", flush=True)
    stats = await interleaved(
        {
            "Bolt round trip (RETURN 1)": bolt,
            "bare index lookup of one identity": index_lookup,
            "resolve, known phone": resolve_hit,
            "resolve, unknown phone": resolve_miss,
            "resolve, switchboard (AMBIGUOUS)": resolve_switchboard,
            "upsertProfile, one phone": upsert,
        },
        rounds,
    )
    await driver.close()
    base = stats["bare index lookup of one identity"].median_ms
    rows = [
        [s.name, f"{s.median_ms:.2f}", f"{s.p95_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.median_ms / base:.2f}x"]
        for s in stats.values()
    ]
    body = (
        f"{profiles:,} generated profiles loaded at {rate:,.0f} profiles/s through the bulk path; "
        f"{rounds:,} samples of each call, interleaved.\n\n"
        + table(rows, ["call (service in-process, no HTTP)", "median ms", "p95 ms", "p99 ms", "median / index lookup"])
    )
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with scratch_database("engine-latency") as uri:
        body = asyncio.run(run(uri, args.profiles, args.rounds))
    print(body)
    write_section(
        "engine-latency",
        "Engine latency on a loaded graph",
        f".venv/bin/python -m bench.engine_latency --profiles {args.profiles} --rounds {args.rounds}",
        body,
    )


if __name__ == "__main__":
    main()
