"""GraphQL output types of the contract (shared/API.md) and the fields added around it, built from domain objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.domain import model
from app.graphql.permissions import CanRead


def as_json(value: object) -> JSON:
    """A plain JSON value (dict, list or scalar) typed as the JSON scalar."""
    return cast(JSON, value)


@strawberry.enum(description="FOUND: one customer; NOT_FOUND: none; AMBIGUOUS: several candidates, never a guess.")
class ResolutionStatus(Enum):
    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    AMBIGUOUS = "AMBIGUOUS"


@strawberry.enum(description="STRONG: a secondary key or two different keys agree; WEAK: one primary key.")
class Assurance(Enum):
    STRONG = "STRONG"
    WEAK = "WEAK"
    NONE = "NONE"


@strawberry.type(description="Who is calling: the token's name and scopes.")
class Me:
    name: str
    scopes: list[str]


@strawberry.type(description="A normalized identity value.")
class Identity:
    key: str
    value: str
    blocked: bool = strawberry.field(description="On the strategy's blocked list: never links profiles.")
    saturated: bool = strawberry.field(description="Shared by more profiles than the fan-out limit: stopped linking.")
    profile_count: int = strawberry.field(description="Profiles holding this value.")
    contested: bool = strawberry.field(
        default=False,
        description="Its holders together hold more values of a max_per_customer key (contestedKey) than the "
        "strategy allows one customer, so it would join different people: stopped linking until that goes away.",
    )
    contested_key: str | None = strawberry.field(
        default=None, description="When contested: the max_per_customer key its holders hold too many values of."
    )
    contested_values: int | None = strawberry.field(
        default=None, description="When contested: how many distinct values of contestedKey its holders hold."
    )

    @classmethod
    def of(cls, stored: model.StoredIdentity) -> Identity:
        return cls(
            key=stored.key,
            value=stored.value,
            blocked=stored.blocked,
            saturated=stored.saturated,
            profile_count=stored.profile_count,
            contested=stored.contested,
            contested_key=stored.contested_key,
            contested_values=stored.contested_values if stored.contested else None,
        )

    @classmethod
    def key_only(cls, key: model.IdentityKey) -> Identity:
        return cls(key=key.key, value=key.value, blocked=False, saturated=False, profile_count=0)


@strawberry.type(description="One profile holding one identity: where and when it was seen, as written.")
class IdentityLink:
    profile_id: strawberry.ID
    key: str
    value: str
    raw: str
    source: str
    first_seen: datetime
    last_seen: datetime
    linking: bool = strawberry.field(
        description="False when the value is blocked, saturated or contested: it joins no one."
    )

    @classmethod
    def of(cls, link: model.IdentityLink) -> IdentityLink:
        return cls(
            profile_id=strawberry.ID(link.profile_id),
            key=link.key,
            value=link.value,
            raw=link.raw,
            source=link.source,
            first_seen=link.first_seen,
            last_seen=link.last_seen,
            linking=link.linking,
        )


@dataclass(frozen=True)
class CustomerIndex:
    """A customer's stored identities by key, and its links by profile id: built once per customer, when a field
    needs it."""

    stored: dict[model.IdentityKey, model.StoredIdentity]
    links: dict[str, list[model.IdentityLink]]

    @classmethod
    def of(cls, customer: model.Customer | None) -> CustomerIndex:
        if customer is None:
            return cls({}, {})
        links: dict[str, list[model.IdentityLink]] = {}
        for link in customer.links:
            links.setdefault(link.profile_id, []).append(link)
        return cls({i.identity: i for i in customer.identities}, links)


class _Held:
    """The CustomerIndex of one customer, built on first use and shared by the customer's profiles, so a customer of
    n profiles costs O(n), not O(n^2), and a query that selects no identities or links never builds it."""

    def __init__(self, customer: model.Customer | None) -> None:
        self._customer = customer
        self._index: CustomerIndex | None = None

    @property
    def index(self) -> CustomerIndex:
        if self._index is None:
            self._index = CustomerIndex.of(self._customer)
        return self._index


# Customer and Profile are views of the domain objects: the scalar fields, the skills and the profile views are
# copied (plain fields cost strawberry a getattr; a field with a resolver costs it ~50 us a call), the other lists
# are built by their resolvers only when the query selects them (an agent desktop's resolve asks for an id, the
# skills and the profile ids; building every identity, link and provenance entry for it was most of the GraphQL
# layer's time).


@strawberry.type
class Profile:
    id: strawberry.ID
    source: str
    source_id: str | None
    created_at: datetime
    updated_at: datetime
    _profile: strawberry.Private[model.Profile]
    _held: strawberry.Private[_Held]

    @strawberry.field
    def identities(self) -> list[Identity]:
        stored = self._held.index.stored
        return [Identity.of(stored[k]) if k in stored else Identity.key_only(k) for k in self._profile.identities]

    @strawberry.field
    def attributes(self) -> JSON:
        return as_json(dict(self._profile.attributes))

    @strawberry.field
    def links(self) -> list[IdentityLink]:
        return [IdentityLink.of(link) for link in self._held.index.links.get(self._profile.id, ())]

    @classmethod
    def of(cls, profile: model.Profile, customer: model.Customer | None = None, held: _Held | None = None) -> Profile:
        """`held`: the customer's shared index (Customer passes its own to every profile)."""
        return cls(
            id=strawberry.ID(profile.id),
            source=profile.source,
            source_id=profile.source_id,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
            _profile=profile,
            _held=held if held is not None else _Held(customer),
        )


@strawberry.type(description="An explicit, reversible merge of one profile into another.")
class MergeEdge:
    source_profile_id: strawberry.ID
    target_profile_id: strawberry.ID
    at: datetime
    by: str
    reason: str

    @classmethod
    def of(cls, edge: model.MergeEdge) -> MergeEdge:
        return cls(
            source_profile_id=strawberry.ID(edge.source_profile_id),
            target_profile_id=strawberry.ID(edge.target_profile_id),
            at=edge.at,
            by=edge.by,
            reason=edge.reason,
        )


@strawberry.type(description="Which profile, source and time gave an attribute its surviving value.")
class AttributeProvenance:
    name: str
    value: JSON
    profile_id: strawberry.ID
    source: str
    updated_at: datetime


@strawberry.type(description="A key the customer holds more values of than the strategy allows.")
class Conflict:
    key: str
    values: list[str]
    limit: int


@strawberry.type
class Customer:
    id: strawberry.ID = strawberry.field(description="Id of the oldest profile of the connected component.")
    profiles: list[Profile]
    skills: list[str] = strawberry.field(description="Routing skills; the fallback skill when no rule applies.")
    truncated: bool = strawberry.field(description="The component is larger than the size bound; only part is shown.")
    _customer: strawberry.Private[model.Customer]

    @strawberry.field
    def identities(self) -> list[Identity]:
        return [Identity.of(i) for i in self._customer.identities]

    @strawberry.field(description="Merged across profiles: the most recently set value wins.")
    def attributes(self) -> JSON:
        return as_json({name: av.value for name, av in self._customer.attributes.items()})

    @strawberry.field
    def attribute_provenance(self) -> list[AttributeProvenance]:
        return [
            AttributeProvenance(
                name=av.name,
                value=as_json(av.value),
                profile_id=strawberry.ID(av.profile_id),
                source=av.source,
                updated_at=av.updated_at,
            )
            for av in self._customer.attributes.values()
        ]

    @strawberry.field
    def conflicts(self) -> list[Conflict]:
        return [Conflict(key=c.key, values=list(c.values), limit=c.limit) for c in self._customer.conflicts]

    @strawberry.field
    def merges(self) -> list[MergeEdge]:
        return [MergeEdge.of(m) for m in self._customer.merges]

    @classmethod
    def of(cls, customer: model.Customer) -> Customer:
        held = _Held(customer)
        return cls(
            id=strawberry.ID(customer.id),
            profiles=[Profile.of(p, held=held) for p in customer.profiles],
            skills=list(customer.skills),
            truncated=customer.truncated,
            _customer=customer,
        )


@strawberry.type(description="An identity value that was not stored or not used, and why.")
class Rejection:
    key: str
    reason: str
    detail: str

    @classmethod
    def of(cls, rejection: model.Rejection) -> Rejection:
        return cls(key=rejection.key, reason=rejection.reason.value, detail=rejection.detail)


@strawberry.type(description="A search key found in the graph but not used to pick a customer.")
class IgnoredKey:
    key: str
    value: str
    reason: str


@strawberry.type
class Resolution:
    status: ResolutionStatus
    customer: Customer | None
    candidates: list[Customer]
    matched_on: list[Identity]
    assurance: Assurance
    rejected: list[Rejection]
    ignored: list[IgnoredKey]

    @classmethod
    def of(cls, resolution: model.Resolution) -> Resolution:
        return cls(
            status=ResolutionStatus(resolution.status.value),
            customer=Customer.of(resolution.customer) if resolution.customer else None,
            candidates=[Customer.of(c) for c in resolution.candidates],
            matched_on=[Identity.key_only(k) for k in resolution.matched_on],
            assurance=Assurance(resolution.assurance.value),
            rejected=[Rejection.of(r) for r in resolution.rejected],
            ignored=[IgnoredKey(key=i.key, value=i.value, reason=i.reason.value) for i in resolution.ignored],
        )


@strawberry.type
class UpsertResult:
    profile: Profile
    customer: Customer = strawberry.field(
        permission_classes=[CanRead],
        description="The customer after the write. Needs identity:read as well as identity:write: an operation that "
        "selects it with a token without identity:read is refused with FORBIDDEN before anything is written (a "
        "refusal of this non-null field after the write would null the whole result). Write-only callers select "
        "profile, created and rejected.",
    )
    created: bool
    rejected: list[Rejection]
    consistency_token: str = strawberry.field(
        description="Pass to resolve(consistencyToken:) to be sure to read this write."
    )

    @classmethod
    def of(cls, result: model.UpsertResult) -> UpsertResult:
        return cls(
            profile=Profile.of(result.profile, result.customer),
            customer=Customer.of(result.customer),
            created=result.created,
            rejected=[Rejection.of(r) for r in result.rejected],
            consistency_token=result.consistency_token,
        )
