"""The change log under concurrency and after an erasure, on the real Neo4j: seqs strictly increasing and gap-free in
commit order under 16 concurrent writers (a follower paging by cursor meanwhile misses none), and no erased value
anywhere in the database or the logs once the person is erased."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.repository import Neo4jRepository
from app.domain.changes import Audit, ChangeType
from app.domain.model import ProfileInput
from app.services.identity import IdentityService

pytestmark = pytest.mark.neo4j

WRITERS = 16
WRITES_PER_WRITER = 6


async def test_seqs_are_gap_free_in_commit_order_under_sixteen_concurrent_writers(
    service: IdentityService, repo: Neo4jRepository
) -> None:
    done = asyncio.Event()
    followed: list[int] = []

    async def writer(w: int) -> list[str]:
        ids = []
        for n in range(WRITES_PER_WRITER):
            # Shared phone numbers across writers: their transactions contend for the same identities' locks too.
            identities = (("phone_number", f"+1415555{n:04d}"), ("email_address", f"w{w}-{n}@example.com"))
            result = await service.upsert_profile(
                ProfileInput("crm", identities, source_id=f"W{w}-{n}"), audit=Audit(f"writer-{w}")
            )
            ids.append(result.profile.id)
        return ids

    async def follower() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read before the page: a page read after the writers finished sees them all
            page = await repo.changes(after=cursor, limit=7)
            followed.extend(e.seq for e in page)
            cursor = page[-1].seq if page else cursor
            if finished and not page:
                return
            await asyncio.sleep(0)

    following = asyncio.create_task(follower())
    written = await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    done.set()
    await following

    events = await repo.changes(after=0, limit=10_000)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))  # strictly increasing, no gap
    assert followed == seqs  # a reader paging while they committed skipped none: seq order is commit order
    assert await repo.last_change() == len(seqs)
    created = sorted(e.profile_ids[0] for e in events if e.type is ChangeType.PROFILE_CREATED)
    assert created == sorted(pid for ids in written for pid in ids)
    assert {e.actor for e in events} <= {f"writer-{w}" for w in range(WRITERS)}


# A person whose every value is distinctive, so a scan can look for it in any form.
ERASED_VALUES = (
    "quintessa.vandermolen@zyxw-example.org",
    "Quintessa.Vandermolen@ZYXW-example.org",
    "+442079460958",
    "+44 20 7946 0958",
    "2079460958",
    "ACCT-ZQX-774411",
    "Zaffre-Chartreuse-91",
    "Quintessa Vandermolen",
)
SURVIVOR_VALUE = "Survivor-Ochre-Unique-42"


async def _every_property(driver: AsyncDriver, database: str) -> list[tuple[str, str]]:
    """Every node's and relationship's properties in the database, as (labels or type, text)."""
    records, _, _ = await driver.execute_query(
        "MATCH (n) RETURN labels(n) AS kind, properties(n) AS props "
        "UNION ALL MATCH ()-[r]->() RETURN [type(r)] AS kind, properties(r) AS props",
        database_=database,
    )
    return [(":".join(r["kind"]), _text(r["props"])) for r in records]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)


async def test_after_an_erasure_no_node_relationship_or_log_line_holds_an_erased_value(
    service: IdentityService,
    repo: Neo4jRepository,
    driver: AsyncDriver,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every app logger at its most verbose
    # The driver's DEBUG lines are the Bolt messages, parameters included: the app never runs it below INFO
    # (app/web/app.py, app/cli/main.py), and neither does this test.
    caplog.set_level(logging.INFO, logger="neo4j")
    steward = Audit("steward", "req-7", "same person")
    crm = await service.upsert_profile(
        ProfileInput(
            "crm",
            (("email_address", ERASED_VALUES[1]), ("phone_number", ERASED_VALUES[3])),
            source_id="ACCT-ZQX-774411",
            attributes={"colour": ERASED_VALUES[6], "name": ERASED_VALUES[7]},
        ),
        audit=steward,
    )
    web = await service.upsert_profile(
        ProfileInput("web", (("account_id", ERASED_VALUES[5]),), source_id="web-1", attributes={"name": "Q. V."}),
        audit=steward,
    )
    survivor = await service.upsert_profile(
        ProfileInput("crm", (("email_address", "keep@example.com"),), source_id="S-1", attributes={"x": SURVIVOR_VALUE})
    )
    await service.merge_profiles(web.profile.id, crm.profile.id, actor="steward", reason="same person")
    await service.upsert_profile(
        ProfileInput("api", (("phone_number", "+442079460958"),), profile_id=web.profile.id), audit=steward
    )
    await service.unlink_identity(web.profile.id, "phone_number", "+442079460958", actor="steward")
    await service.upsert_profile(
        ProfileInput("crm", (), source_id="ACCT-ZQX-774411", attributes={"colour": "Zaffre-Chartreuse-91-b"}),
        audit=steward,
    )
    await service.erase(crm.profile.id, request_id="gdpr-77", reason="data subject request", actor="dpo")

    found = await _every_property(driver, settings.neo4j_database)
    assert any(SURVIVOR_VALUE in text for _, text in found)  # the scan does see values where they are
    assert any(kind == "Change" for kind, _ in found)  # and the change log's nodes
    leaks = [(kind, v) for kind, text in found for v in ERASED_VALUES if v.lower() in text.lower()]
    assert leaks == []
    leaked = {r.name for r in caplog.records for v in ERASED_VALUES if v.lower() in r.getMessage().lower()}
    assert leaked == set()
    events = await repo.changes(after=0, limit=100, profile_ids=[crm.profile.id, web.profile.id])
    assert [e.type for e in events][-1] is ChangeType.CUSTOMER_ERASED  # the history outlives the profiles
    assert survivor.profile.id not in {p for e in events for p in e.profile_ids}
