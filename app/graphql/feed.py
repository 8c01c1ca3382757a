"""The change feed in GraphQL: `changes` (a page for pollers) and `customerHistory` (the inspector's history panel),
both behind identity:audit. Events name profiles and customers by id only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from app.domain import changes as domain
from app.errors import AppError
from app.graphql.context import Context
from app.services.changes import DEFAULT_HISTORY_LIMIT, DEFAULT_LIMIT, MAX_LIMIT, ChangeFeed

Info = strawberry.Info[Context, Any]

ChangeType = strawberry.enum(
    domain.ChangeType,
    name="ChangeType",
    description="What changed. PROFILE_UPDATED: attributes or identities of an existing profile; IDENTITY_SATURATED: "
    "an identity stopped linking (shared by too many profiles, or contested); IDENTITY_RELEASED: a contested "
    "identity links again.",
)


@strawberry.type(description="One change of the graph: ids, who and when; never an identity or attribute value.")
class ChangeEvent:
    cursor: str = strawberry.field(description="Orders every event; pass it as `after` to read what follows.")
    type: ChangeType  # type: ignore[valid-type]  # strawberry.enum() of the domain's enum is the class itself
    profile_ids: list[strawberry.ID] = strawberry.field(
        description="For a merge: source then target; for an erasure: the profiles erased."
    )
    customer_before: strawberry.ID | None
    customer_after: strawberry.ID | None
    actor: str = strawberry.field(description="The token's name, or cli, crm-webhook, retention.")
    request_id: str | None
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, event: domain.ChangeEvent) -> ChangeEvent:
        return cls(
            cursor=event.cursor,
            type=event.type,
            profile_ids=[strawberry.ID(p) for p in event.profile_ids],
            customer_before=None if event.customer_before is None else strawberry.ID(event.customer_before),
            customer_after=None if event.customer_after is None else strawberry.ID(event.customer_after),
            actor=event.actor,
            request_id=event.request_id,
            reason=event.reason,
            at=event.at,
        )


@strawberry.type(description="A page of the change feed, oldest first.")
class ChangePage:
    events: list[ChangeEvent]
    next_cursor: str | None = strawberry.field(
        description="Pass it as `after` next time: the last event's cursor, or the `after` given when the page is "
        "empty; null only when the page is empty and no `after` was given. Filtered by types or profileId, a page "
        "that is not full gives the log's head as it was when the read began (what lies between was not asked for)."
    )


@strawberry.type(description="What happened to a customer and the profiles it held, newest first.")
class CustomerHistory:
    customer_id: strawberry.ID
    events: list[ChangeEvent]


def _feed(info: Info) -> ChangeFeed:
    if info.context.feed is None:  # every serving app has one; a context built without it is a wiring error
        raise AppError("the change feed is not configured in this process")
    return info.context.feed


async def changes(
    info: Info,
    after: str | None = None,
    limit: int | None = DEFAULT_LIMIT,  # null: the default
    types: list[ChangeType] | None = None,  # type: ignore[valid-type]
    profile_id: strawberry.ID | None = None,
) -> ChangePage:
    async with info.context.db_calls:
        page = await _feed(info).page(
            after=after,
            limit=DEFAULT_LIMIT if limit is None else limit,
            types=types,
            profile_id=None if profile_id is None else str(profile_id),
        )
    return ChangePage(events=[ChangeEvent.of(e) for e in page.events], next_cursor=page.next_cursor)


async def customer_history(
    info: Info,
    profile_id: strawberry.ID,
    limit: int | None = DEFAULT_HISTORY_LIMIT,  # null: the default
    types: list[ChangeType] | None = None,  # type: ignore[valid-type]
) -> CustomerHistory | None:
    async with info.context.db_calls:
        customer = await info.context.service.customer(str(profile_id))
        if customer is None:
            return None
        limit = DEFAULT_HISTORY_LIMIT if limit is None else limit
        events = await _feed(info).history(customer.id, [p.id for p in customer.profiles], limit=limit, types=types)
    return CustomerHistory(customer_id=strawberry.ID(customer.id), events=[ChangeEvent.of(e) for e in events])


CHANGES_DESCRIPTION = (
    f"The change feed, oldest first: up to `limit` (1-{MAX_LIMIT}) events after the cursor `after`; only `types`, "
    "only events naming `profileId`. Needs identity:audit."
)
HISTORY_DESCRIPTION = (
    "The newest changes of the customer of a profile, newest first: merges, unmerges, links, unlinks and erasures of "
    "its profiles, former ones included (or `types`); null when the profile does not exist. Needs identity:audit."
)
