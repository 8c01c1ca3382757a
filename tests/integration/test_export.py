"""The streaming export (app/db/export.py) on the real Neo4j, beside the paged statement it replaced
(bench/cypher/export_page_v1.cypher): the same rows, customer_id = the oldest profile of the component, for a
component larger than a fetch, shared identities, merges, profiles that stand alone, and a component larger than
max_component_nodes (whole in the export, cut by the old walk)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.domain.model import ProfileInput
from app.services.identity import IdentityService
from bench.export import old_statement

pytestmark = pytest.mark.neo4j

PHONE = "phone_number"
EMAIL = "email_address"

Row = tuple[str, str, str | None, str]


async def old_rows(driver: AsyncDriver, settings: Settings, *, max_nodes: int, page_size: int = 3) -> list[Row]:
    """The export as the paged statement gave it, page after page."""
    rows: list[Row] = []
    after = ""
    while True:
        page, _, _ = await driver.execute_query(
            old_statement(),
            {"after": after, "limit": page_size, "max_nodes": max_nodes},
            database_=settings.neo4j_database,
            routing_="r",
        )
        rows += [(r["profile_id"], r["source"] or "", r["source_id"], r["customer_id"]) for r in page]
        if len(page) < page_size:
            return rows
        after = page[-1]["profile_id"]


async def new_rows(service: IdentityService, page_size: int = 2) -> list[Row]:
    return [
        (r.profile_id, r.source, r.source_id, r.customer_id) async for r in service.export_rows(page_size=page_size)
    ]


async def add(service: IdentityService, source_id: str, *identities: tuple[str, str], source: str = "crm") -> str:
    result = await service.upsert_profile(ProfileInput(source, identities, source_id=source_id))
    return result.profile.id


async def test_export_matches_the_paged_export_and_takes_the_oldest_of_each_component(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    # A chain of 7 profiles over shared e-mails, the oldest at one end: 7 profiles + 8 identities = 15 nodes.
    chain = [
        await add(service, f"chain-{k}", (EMAIL, f"c{k}@example.com"), (EMAIL, f"c{k + 1}@example.com"))
        for k in range(7)
    ]
    # Three profiles sharing one phone, and an IVR call of the last one's e-mail.
    household = [
        await add(service, f"home-{k}", (PHONE, "+14155550100"), (EMAIL, f"h{k}@example.com")) for k in range(3)
    ]
    ivr = await add(service, "call-1", (EMAIL, "h2@example.com"), source="ivr")
    # Two profiles sharing nothing, merged by a steward; then the younger of the pair merged into the household.
    a = await add(service, "merge-a", (EMAIL, "ma@example.com"))
    b = await add(service, "merge-b", (EMAIL, "mb@example.com"))
    await service.merge_profiles(b, a, actor="steward")
    await service.merge_profiles(b, household[1], actor="steward")
    alone = await add(service, "alone", (EMAIL, "alone@example.com"))
    bare = (
        await service.upsert_profile(ProfileInput("webchat", (), source_id="bare", attributes={"tier": "Gold"}))
    ).profile.id

    new = await new_rows(service, page_size=2)
    assert new == sorted(new)  # profile id order
    assert new == await old_rows(driver, settings, max_nodes=10_000)
    customer = {profile_id: customer_id for profile_id, _, _, customer_id in new}
    assert {customer[p] for p in chain} == {chain[0]}
    assert {customer[p] for p in [*household, ivr, a, b]} == {household[0]}
    assert customer[alone] == alone and customer[bare] == bare
    assert ("bare" in {source_id for _, _, source_id, _ in new}) and len(new) == 15


async def test_a_component_over_the_node_limit_gets_one_customer_the_oldest_of_all(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    chain = [
        await add(service, f"chain-{k}", (EMAIL, f"c{k}@example.com"), (EMAIL, f"c{k + 1}@example.com"))
        for k in range(7)
    ]
    new = await new_rows(service, page_size=1)
    assert {customer_id for _, _, _, customer_id in new} == {chain[0]}
    # The paged statement stopped each walk after max_nodes + 1 nodes: the far end of the chain never reached the
    # oldest profile, so one component got several customer ids.
    cut: dict[str, set[str]] = defaultdict(set)
    for profile_id, _, _, customer_id in await old_rows(driver, settings, max_nodes=5):
        cut[customer_id].add(profile_id)
    assert len(cut) > 1 and chain[0] in cut


async def test_an_empty_graph_exports_nothing(service: IdentityService) -> None:
    assert await new_rows(service) == []
