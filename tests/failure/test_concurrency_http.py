"""Sixteen HTTP clients against a real `idgraph serve` doing random upserts, links, merges, unmerges, erasures and
resolves on a small key space; afterwards the graph must hold what the acknowledged operations built (see
tests/failure/history.py for what is well-defined when operations overlap) and nothing else.

The key space: 30 people, each with one phone number (written in several national and international spellings), one
email address (in several casings) and, for ten of them, an account id. A few records carry a household member's
phone. Which people the clients work on drifts through the run (a "hot" group), so erasures race with writes to the
same customer.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db.driver import AsyncDriver
from app.domain.model import IdentityKey, NormalizedIdentity
from app.domain.normalize import normalize
from app.domain.strategy import default_strategy
from app.domain.suppression import suppression_hash
from tests.failure import privacy
from tests.failure.history import Checker, FinalGraph, Kind, Op, components_of
from tests.failure.server import ERASURE_KEY, Served, error_codes, graphql_body

pytestmark = [pytest.mark.neo4j, pytest.mark.failure]

SEED = 20261120
CLIENTS = 16
OPERATIONS = 400
PEOPLE = 30
ACCOUNTS = 10
HOT = 5  # people most operations of a phase are about
PHASE = 50  # operations per phase; the hot group moves on each phase
RUN_BOUND_S = 150.0

STRATEGY = default_strategy()

UPSERT = """mutation($input: ProfileInput!) {
  upsertProfile(input: $input) { profile { id } created rejected { key reason } }
}"""
LINK = """mutation($id: ID!, $ids: [IdentityInput!]!) {
  linkIdentities(profileId: $id, identities: $ids) { profile { id } rejected { key reason } }
}"""
MERGE = """mutation($s: ID!, $t: ID!) {
  mergeProfiles(sourceProfileId: $s, targetProfileId: $t, reason: "failure suite") { id profiles { id } }
}"""
UNMERGE = """mutation($s: ID!, $t: ID!) { unmergeProfiles(sourceProfileId: $s, targetProfileId: $t) { id } }"""
ERASE = """mutation($id: ID!, $rid: ID!) {
  eraseCustomer(profileId: $id, requestId: $rid, reason: "failure suite") { requestId status profilesDeleted }
}"""
RESOLVE = """query($ids: [IdentityInput!]!) { resolve(identities: $ids) { status customer { id } } }"""
CUSTOMER = """query($id: ID!) { customer(profileId: $id) { id profiles { id } truncated } }"""


def phone_spellings(person: int) -> list[str]:
    line = f"{100 + person:04d}"
    return [
        f"+1415555{line}",
        f"+1 415 555 {line}",
        f"(415) 555-{line}",
        f"415.555.{line}",
        f"1-415-555-{line}",
        f"tel:+1-415-555-{line}",
    ]


def email_spellings(person: int) -> list[str]:
    address = f"person{person}.fs@example.org"
    return [address, address.upper(), f"  {address.title()} "]


def account_of(person: int) -> str | None:
    return f"ACCT-FS-{person:05d}" if person < ACCOUNTS else None


def unknown_phone(n: int) -> str:
    """Numbers nobody writes: resolving them must leave no trace."""
    return f"+1 415 555 {300 + n % 100:04d}"


def normalized(key: str, raw: str) -> IdentityKey:
    result = normalize(STRATEGY, key, raw)
    assert isinstance(result, NormalizedIdentity), (key, result)
    return result.identity


def key_space() -> dict[IdentityKey, list[str]]:
    """Every normalized value of the workload with the raw spellings it is sent as."""
    space: dict[IdentityKey, list[str]] = {}
    for person in range(PEOPLE):
        for key, spellings in (("phone_number", phone_spellings(person)), ("email_address", email_spellings(person))):
            space[normalized(key, spellings[0])] = spellings
        account = account_of(person)
        if account:
            space[normalized("account_id", account)] = [account]
    return space


class Workload:
    """Shared state of the clients: the operation budget, what they have learnt, and the history."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.started = time.monotonic()
        self.budget = itertools.count()
        self.history: list[Op] = []
        self.profiles: list[tuple[str, int]] = []  # (profile id, person) from acknowledged upserts
        self.merged: list[tuple[str, str]] = []
        self.http_errors: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.started

    async def call(self, op: Op, query: str, variables: dict[str, Any]) -> Any:
        """Send one operation and finish `op` with its outcome; returns the `data` of a success."""
        self.history.append(op)
        try:
            response = await self.http.post("/graphql", json=graphql_body(query, variables))
        except httpx.HTTPError as exc:
            op.finish(self.now(), f"transport:{type(exc).__name__}", None)
            return None
        at = self.now()
        if response.status_code != 200:
            self.http_errors.append(f"{op.kind}: HTTP {response.status_code} {response.text[:300]}")
            op.finish(at, f"http:{response.status_code}", None)
            return None
        body = response.json()
        codes = error_codes(body)
        op.finish(at, (codes[0] or "(no code)") if codes else "", body.get("data"))
        return None if codes else body["data"]


def person_for(rng: random.Random, n: int) -> int:
    phase = n // PHASE
    if rng.random() < 0.7:
        return (phase * HOT + rng.randrange(HOT)) % PEOPLE
    return rng.randrange(PEOPLE)


def identities_for(rng: random.Random, person: int) -> list[tuple[str, str]]:
    chosen: list[tuple[str, str]] = []
    if rng.random() < 0.8:
        owner = (person + 1) % PEOPLE if rng.random() < 0.05 else person  # a household member's phone
        chosen.append(("phone_number", rng.choice(phone_spellings(owner))))
    if rng.random() < 0.6 or not chosen:
        chosen.append(("email_address", rng.choice(email_spellings(person))))
    account = account_of(person)
    if account and rng.random() < 0.3:
        chosen.append(("account_id", account))
    return chosen


def as_input(identities: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in identities]


def stored_of(sent: list[tuple[str, str]], data: Any, field: str) -> frozenset[IdentityKey]:
    rejected = {r["key"] for r in data[field]["rejected"]}
    assert all(r["reason"] == "SUPPRESSED" for r in data[field]["rejected"]), data
    return frozenset(normalized(k, v) for k, v in sent if k not in rejected)


async def client(workload: Workload, number: int) -> None:
    rng = random.Random(SEED * 100 + number)
    while (n := next(workload.budget)) < OPERATIONS:
        roll = rng.random()
        kind: Kind
        if roll < 0.10:
            kind = "resolve"
        elif roll < 0.16 and workload.merged:
            kind = "unmerge"
        elif roll < 0.20 and workload.profiles:
            kind = "erase"
        elif roll < 0.35 and len(workload.profiles) > 1:
            kind = "merge"
        elif roll < 0.50 and workload.profiles:
            kind = "link"
        else:
            kind = "upsert"
        await run_one(workload, rng, number, n, kind)


def pick_profile(workload: Workload, rng: random.Random, n: int) -> tuple[str, int]:
    """A known profile, most often of a hot person (it may have been erased since)."""
    hot = [p for p in workload.profiles if p[1] == person_for(rng, n)]
    return rng.choice(hot) if hot and rng.random() < 0.8 else rng.choice(workload.profiles)


async def run_one(workload: Workload, rng: random.Random, number: int, n: int, kind: Kind) -> None:
    if kind == "resolve":
        person = person_for(rng, n)
        sent = [("phone_number", unknown_phone(n))] if rng.random() < 0.3 else identities_for(rng, person)
        op = Op(number, kind, {"ids": sent}, workload.now())
        await workload.call(op, RESOLVE, {"ids": as_input(sent)})
    elif kind == "upsert":
        person = person_for(rng, n)
        sent = identities_for(rng, person)
        source = rng.choice(("crm", "ivr"))
        source_id = f"{source}-{person}-{rng.randrange(3)}"
        variables = {
            "input": {
                "source": source,
                "sourceId": source_id,
                "identities": as_input(sent),
                "attributes": {"tier": rng.choice(("Gold", "Silver"))},
            }
        }
        op = Op(number, kind, variables, workload.now(), record=(source, source_id))
        op.sent = frozenset(normalized(k, v) for k, v in sent)
        data = await workload.call(op, UPSERT, variables)
        if data is not None:
            op.profile_id = data["upsertProfile"]["profile"]["id"]
            op.stored = stored_of(sent, data, "upsertProfile")
            workload.profiles.append((str(op.profile_id), person))
    elif kind == "link":
        target, person = pick_profile(workload, rng, n)
        other = person if rng.random() < 0.85 else rng.randrange(PEOPLE)
        sent = identities_for(rng, other)[:1]
        op = Op(number, kind, {"id": target, "ids": sent}, workload.now(), profile_id=target)
        op.sent = frozenset(normalized(k, v) for k, v in sent)
        data = await workload.call(op, LINK, {"id": target, "ids": as_input(sent)})
        if data is not None:
            assert data["linkIdentities"]["profile"]["id"] == target
            op.stored = stored_of(sent, data, "linkIdentities")
    elif kind == "merge":
        source, person = pick_profile(workload, rng, n)
        same = [p for p, q in workload.profiles if q == person and p != source]
        if same and rng.random() < 0.8:
            target = rng.choice(same)
        else:
            target = rng.choice([p for p, _ in workload.profiles if p != source] or [source])
        op = Op(number, kind, {"s": source, "t": target}, workload.now())
        data = await workload.call(op, MERGE, {"s": source, "t": target})
        if data is not None:
            op.effective = source in {p["id"] for p in data["mergeProfiles"]["profiles"]}
            if op.effective:
                workload.merged.append((source, target))
    elif kind == "unmerge":
        source, target = rng.choice(workload.merged)
        op = Op(number, kind, {"s": source, "t": target}, workload.now())
        await workload.call(op, UNMERGE, {"s": source, "t": target})
    else:
        target, _ = pick_profile(workload, rng, n)
        request_id = f"fs-{uuid.uuid4().hex[:16]}"
        op = Op(number, kind, {"id": target, "rid": request_id}, workload.now())
        await workload.call(op, ERASE, {"id": target, "rid": request_id})


async def read_final_graph(driver: AsyncDriver) -> FinalGraph:
    async def rows(query: str) -> list[dict[str, Any]]:
        records, _, _ = await driver.execute_query(query, routing_="r")
        return [r.data() for r in records]

    profiles = {
        r["id"]: (r["source"], r["source_id"])
        for r in await rows("MATCH (p:Profile) RETURN p.id AS id, p.source AS source, p.source_id AS source_id")
    }
    edges = await rows(
        "MATCH (p:Profile)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity) RETURN p.id AS p, type(e) AS t, i.key AS k, "
        "i.value AS v"
    )
    links = {(r["p"], IdentityKey(r["k"], r["v"])) for r in edges if r["t"] == "HAS_IDENTITY"}
    observed = {(r["p"], IdentityKey(r["k"], r["v"])) for r in edges if r["t"] == "OBSERVED"}
    merges = {(r["s"], r["t"]) for r in await rows("MATCH (s)-[:MERGED_INTO]->(t) RETURN s.id AS s, t.id AS t")}
    identities = {IdentityKey(r["k"], r["v"]) for r in await rows("MATCH (i:Identity) RETURN i.key AS k, i.value AS v")}
    suppressed = {r["h"] for r in await rows("MATCH (s:Suppression) RETURN s.hash AS h")}
    receipts = {r["r"] for r in await rows("MATCH (r:ErasureReceipt) RETURN r.request_id AS r")}
    return FinalGraph(profiles, links, observed, merges, identities, suppressed, receipts)


STRUCTURE = {
    "identity nodes sharing a (key, value)": "MATCH (i:Identity) WITH i.key AS k, i.value AS v, count(*) AS n "
    "WHERE n > 1 RETURN count(*) AS bad",
    "identities without key or value": "MATCH (i:Identity) WHERE i.key IS NULL OR i.value IS NULL "
    "RETURN count(*) AS bad",
    "duplicate identity edges of one profile": "MATCH (p:Profile)-[e:HAS_IDENTITY|OBSERVED]->(i:Identity) "
    "WITH p, i, count(e) AS n WHERE n > 1 RETURN count(*) AS bad",
    "duplicate merge edges": "MATCH (s:Profile)-[m:MERGED_INTO]->(t:Profile) WITH s, t, count(m) AS n WHERE n > 1 "
    "RETURN count(*) AS bad",
    "self merges": "MATCH (p:Profile)-[:MERGED_INTO]->(p) RETURN count(*) AS bad",
    "merge edges touching a non-profile": "MATCH (a)-[:MERGED_INTO]-(b) WHERE NOT a:Profile OR NOT b:Profile "
    "RETURN count(*) AS bad",
    "identity edges from or to the wrong labels": "MATCH (a)-[:HAS_IDENTITY|OBSERVED]->(b) "
    "WHERE NOT a:Profile OR NOT b:Identity RETURN count(*) AS bad",
    "identities no profile holds (left behind by a write or an erasure)": "MATCH (i:Identity) "
    "WHERE NOT EXISTS { (i)<-[:HAS_IDENTITY|OBSERVED]-(:Profile) } RETURN count(*) AS bad",
    "profiles sharing a source record": "MATCH (p:Profile) WHERE p.source_id IS NOT NULL "
    "WITH p.source AS s, p.source_id AS r, count(*) AS n WHERE n > 1 RETURN count(*) AS bad",
    "profiles without an id": "MATCH (p:Profile) WHERE p.id IS NULL RETURN count(*) AS bad",
    "saturated identities (the workload stays under the fan-out limit)": "MATCH (i:Identity) WHERE i.saturated "
    "RETURN count(*) AS bad",
}


@pytest.mark.timeout(240)
async def test_sixteen_http_clients_leave_the_graph_their_acknowledged_operations_built(
    served: Served, driver: AsyncDriver, tmp_path: Path
) -> None:
    space = key_space()
    privacy.remember(raw for spellings in space.values() for raw in spellings)
    privacy.remember(unknown_phone(n) for n in range(100))
    hash_of = {key: suppression_hash(ERASURE_KEY.encode(), key) for key in space}

    async with served.async_client() as http:
        workload = Workload(http)
        await asyncio.wait_for(asyncio.gather(*(client(workload, c) for c in range(CLIENTS))), RUN_BOUND_S)
        history = workload.history
        final = await read_final_graph(driver)

        # Everything wrong at once, so one run shows the whole picture.
        problems = [f"HTTP error: {e}" for e in workload.http_errors[:5]]
        problems += [
            f"uncoded or masked error: {o}"
            for o in history
            if o.code in ("INTERNAL", "(no code)") or o.code.startswith("transport")
        ][:10]
        for name, query in STRUCTURE.items():
            records, _, _ = await driver.execute_query(query, routing_="r")
            if records[0]["bad"]:
                problems.append(f"{records[0]['bad']} {name}")
        verdict = Checker(history, final, hash_of).run()
        problems += verdict.violations
        summary = _summary(history, verdict.notes)
        log = tmp_path / "history.txt"
        log.write_text("\n".join(str(o) + f" -> {o.result}" for o in sorted(history, key=lambda o: o.completed)))
        assert not problems, "\n".join([summary, f"history: {log}", *problems])

        # The service's customers are the graph's connected components.
        expected = components_of(final)
        for pid, members in expected.items():
            response = await http.post("/graphql", json=graphql_body(CUSTOMER, {"id": pid}))
            customer = response.json()["data"]["customer"]
            assert customer is not None and not customer["truncated"], (pid, response.text)
            assert {p["id"] for p in customer["profiles"]} == members, pid

        # Every erased value is refused when a sync sends it again.
        erased = [key for key, digest in hash_of.items() if digest in final.suppressed]
        for n, key in enumerate(erased):
            variables = {
                "input": {
                    "source": "probe",
                    "sourceId": f"probe-{n}",
                    "identities": [{"key": key.key, "value": space[key][-1]}],
                }
            }
            response = await http.post("/graphql", json=graphql_body(UPSERT, variables))
            assert error_codes(response.json()) == ["SUPPRESSED"], (key, response.text)

    ops = [o for o in history if o.kind != "resolve"]
    assert sum(o.outcome == "ok" for o in ops) >= OPERATIONS // 3, summary
    assert any(o.kind == "erase" and o.outcome == "ok" for o in ops), summary
    print(summary)


def _summary(history: list[Op], notes: list[str]) -> str:
    counts: dict[str, int] = {}
    for op in history:
        label = f"{op.kind}:{op.outcome}{'/' + op.code if op.code else ''}"
        counts[label] = counts.get(label, 0) + 1
    span = max((o.completed for o in history), default=0.0)
    lines = [f"{len(history)} operations in {span:.1f}s: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))]
    return "\n".join(lines + notes)
