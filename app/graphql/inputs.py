"""GraphQL input types: what clients send (values raw; the server normalizes them)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON


@strawberry.input(description="A raw identity value; the server normalizes it with the strategy's rule for the key.")
class IdentityInput:
    key: str
    value: str


@strawberry.input
class ProfileInput:
    source: str = strawberry.field(description='The source system: "salesforce", "ivr", "webchat", ...')
    identities: list[IdentityInput]
    source_id: str | None = strawberry.field(
        default=None, description="The record's id in the source; upserts are idempotent on (source, sourceId)."
    )
    profile_id: strawberry.ID | None = strawberry.field(
        default=None, description="Or: add to this existing profile (a flow's Merge action)."
    )
    attributes: JSON | None = strawberry.field(
        default=None, description='Flat object of scalars, e.g. {"tier": "Platinum"}; null removes an attribute.'
    )
