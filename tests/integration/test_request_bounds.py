"""Every request is bounded on the real database: explain by the component size limit, the identities one profile
may hold, the raw spelling stored with an edge, and the links a read returns."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.domain.model import ProfileInput, ResolutionStatus
from app.domain.strategy import Strategy, default_strategy
from app.errors import Conflict, InvalidInput
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.erasure_key import ERASURE_KEY

pytestmark = pytest.mark.neo4j

EMAIL = "email_address"


def limited(repo: Neo4jRepository, clock: Clock, max_nodes: int) -> IdentityService:
    return IdentityService(repo, default_strategy(), ERASURE_KEY.encode(), max_component_nodes=max_nodes, clock=clock)


async def chain(service: IdentityService, length: int) -> list[str]:
    """Profiles P0..P(length-1), each sharing an email address with the next: 2 * length + 1 nodes in all."""
    ids = []
    for k in range(length):
        item = ProfileInput("crm", ((EMAIL, f"c{k}@example.com"), (EMAIL, f"c{k + 1}@example.com")), source_id=f"P{k}")
        ids.append((await service.upsert_profile(item)).profile.id)
    return ids


async def test_explain_within_the_component_limit_gives_the_whole_chain(repo: Neo4jRepository, clock: Clock) -> None:
    ids = await chain(limited(repo, clock, 20), 4)
    explanation = await limited(repo, clock, 9).explain(ids[0], ids[-1])
    assert explanation.connected
    assert [(s.from_profile_id, s.to_profile_id) for s in explanation.steps] == list(pairwise(ids))


async def test_explain_in_a_customer_over_the_component_limit_is_refused_as_too_large(
    repo: Neo4jRepository, clock: Clock
) -> None:
    ids = await chain(limited(repo, clock, 20), 4)  # 9 nodes
    with pytest.raises(Conflict, match="more than 8 nodes: too large to explain"):
        await limited(repo, clock, 8).explain(ids[0], ids[-1])


async def test_explain_from_a_customer_over_the_limit_to_a_small_one_says_not_linked(
    repo: Neo4jRepository, clock: Clock
) -> None:
    ids = await chain(limited(repo, clock, 20), 4)
    lone = await limited(repo, clock, 20).upsert_profile(
        ProfileInput("crm", ((EMAIL, "lone@example.com"),), source_id="L")
    )
    for a, b in ((ids[0], lone.profile.id), (lone.profile.id, ids[0])):
        explanation = await limited(repo, clock, 3).explain(a, b)
        assert not explanation.connected and explanation.steps == ()


def capped(identities: int) -> Strategy:
    strategy = default_strategy()
    return replace(strategy, protections=replace(strategy.protections, max_identities_per_profile=identities))


def emails(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((EMAIL, f"{name}@example.com") for name in names)


async def test_identities_beyond_the_limit_per_profile_are_refused_across_calls_and_nothing_is_stored(
    repo: Neo4jRepository, clock: Clock
) -> None:
    service = IdentityService(repo, capped(3), ERASURE_KEY.encode(), clock=clock)
    first = await service.upsert_profile(ProfileInput("crm", emails("a", "b"), source_id="C-1"))
    with pytest.raises(InvalidInput) as refused:
        await service.upsert_profile(
            ProfileInput("crm", emails("c", "d"), source_id="C-1", attributes={"tier": "Gold"})
        )
    assert f"profile {first.profile.id} would hold 4 identities" in refused.value.message
    assert "limit of 3 per profile" in refused.value.message
    customer = await service.customer(first.profile.id)
    assert customer is not None
    assert sorted(link.value for link in customer.links) == ["a@example.com", "b@example.com"]
    assert customer.profiles[0].attributes == {}
    assert (await service.resolve([(EMAIL, "c@example.com")])).status is ResolutionStatus.NOT_FOUND
    # Within the limit, the same profile still takes identities it already holds and a new one.
    again = await service.upsert_profile(ProfileInput("crm", emails("a", "c"), source_id="C-1"))
    assert sorted(link.value for link in again.customer.links) == ["a@example.com", "b@example.com", "c@example.com"]


async def test_a_bulk_batch_refuses_only_the_input_over_the_limit(repo: Neo4jRepository, clock: Clock) -> None:
    service = IdentityService(repo, capped(3), ERASURE_KEY.encode(), clock=clock)
    await service.upsert_profile(ProfileInput("crm", emails("a", "b", "c"), source_id="C-1"))
    outcomes = await service.ingest_batch(
        [
            ProfileInput("crm", emails("x"), source_id="C-2"),
            ProfileInput("crm", emails("d"), source_id="C-1"),
            ProfileInput("crm", emails("y"), source_id="C-3"),
        ]
    )
    assert [o.error is None for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, InvalidInput) and "limit of 3" in outcomes[1].error.message
    assert (await service.resolve([(EMAIL, "x@example.com")])).status is ResolutionStatus.FOUND
    assert (await service.resolve([(EMAIL, "d@example.com")])).status is ResolutionStatus.NOT_FOUND


async def test_the_raw_spelling_is_stored_trimmed(
    service: IdentityService, driver: AsyncDriver, settings: Settings
) -> None:
    written = await service.upsert_profile(ProfileInput("crm", ((EMAIL, "  Jane@Example.org\t "),), source_id="C-1"))
    assert [link.raw for link in written.customer.links] == ["Jane@Example.org"]
    records, _, _ = await driver.execute_query(
        "MATCH (:Profile {id: $id})-[e:HAS_IDENTITY]->() RETURN e.raw AS raw",
        id=written.profile.id,
        database_=settings.neo4j_database,
    )
    assert [r["raw"] for r in records] == ["Jane@Example.org"]


async def test_a_read_returns_a_bounded_number_of_links_per_profile_and_says_the_customer_is_truncated(
    driver: AsyncDriver, settings: Settings, clock: Clock
) -> None:
    def bounded(links: int) -> IdentityService:
        repo = Neo4jRepository(
            driver,
            token_key=token_key(ERASURE_KEY.encode()),
            database=settings.neo4j_database,
            timeout_s=30.0,
            max_links_per_profile=links,
        )
        return IdentityService(repo, default_strategy(), ERASURE_KEY.encode(), clock=clock)

    written = await bounded(10).upsert_profile(ProfileInput("crm", emails("a", "b", "c", "d", "e"), source_id="C-1"))
    assert len(written.customer.links) == 5 and not written.customer.truncated
    found = await bounded(3).resolve([(EMAIL, "a@example.com")])
    assert found.customer is not None and found.customer.truncated
    assert sorted(link.value for link in found.customer.links) == ["a@example.com", "b@example.com", "c@example.com"]
    customer = await bounded(3).customer(written.profile.id)
    assert customer is not None and customer.truncated and len(customer.links) == 3
