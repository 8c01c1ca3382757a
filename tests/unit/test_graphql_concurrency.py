"""One request has at most MAX_DB_CALLS_PER_REQUEST database calls in flight: a query of 30 aliased fields waits its
turn instead of taking 30 connections at once. Measured with a counting service, on both execution paths."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from app.auth import READ, Principal
from app.domain.model import Assurance, Resolution, ResolutionStatus
from app.graphql.context import MAX_DB_CALLS_PER_REQUEST, Context
from app.graphql.schema import MAX_ALIASES, build_schema
from app.services.identity import IdentityService

NOT_FOUND = Resolution(ResolutionStatus.NOT_FOUND, None, (), (), Assurance.NONE)


class CountingService:
    """Answers every lookup NOT_FOUND after yielding to the event loop a few times, counting calls in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.calls = 0

    async def resolve(self, identities: Sequence[tuple[str, str]], *, consistency: str | None = None) -> Resolution:
        self.calls += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(5):  # every other field's resolver gets to start meanwhile, unless it must wait
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        return NOT_FOUND


def aliased_resolves(count: int) -> str:
    fields = " ".join(
        f'r{n}: resolve(identities: [{{key: "phone_number", value: "+1415555{n:04d}"}}]) {{ status }}'
        for n in range(count)
    )
    return "query Many { " + fields + " }"


def context_with(service: CountingService) -> Context:
    return Context(
        service=cast(IdentityService, service),
        principal=Principal("reader", frozenset({READ})),
        request_id="test",
    )


async def test_a_query_with_30_aliased_resolves_never_has_more_than_the_limit_in_flight() -> None:
    schema = build_schema()
    query = aliased_resolves(MAX_ALIASES)
    service = CountingService()
    result = await schema.execute(query, context_value=context_with(service))
    assert result.errors is None
    assert result.data is not None and len(result.data) == MAX_ALIASES
    assert service.calls == MAX_ALIASES
    assert service.most == MAX_DB_CALLS_PER_REQUEST

    prepared = schema.prepared.get(query, None)  # the next request with this text skips strawberry's pipeline
    assert prepared is not None
    again = CountingService()
    result = await schema.execute_prepared(prepared, None, context_with(again))
    assert result.errors is None
    assert again.calls == MAX_ALIASES
    assert again.most == MAX_DB_CALLS_PER_REQUEST


async def test_each_request_has_its_own_limit() -> None:
    schema = build_schema()
    query = aliased_resolves(8)
    service = CountingService()
    results = await asyncio.gather(*(schema.execute(query, context_value=context_with(service)) for _ in range(2)))
    assert all(r.errors is None for r in results)
    assert service.most == 2 * MAX_DB_CALLS_PER_REQUEST
