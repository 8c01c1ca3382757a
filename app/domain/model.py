"""The shapes idgraph reasons about: identities, profiles, customers, resolutions.

Everything here is a frozen dataclass built by the repository (from the graph) or by the services,
and read by the GraphQL layer. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

Scalar = str | int | float | bool | None
"""An attribute value: a flat JSON scalar."""

Attributes = Mapping[str, Scalar]


class KeyKind(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class Normalization(StrEnum):
    E164 = "E164"
    LOWERCASE = "Lowercase"
    NONE = "None"


class RejectionReason(StrEnum):
    """Why one identity value of a request was not stored. Stable: clients match on these."""

    UNKNOWN_KEY = "UNKNOWN_KEY"  # the key is not an identity attribute of the strategy
    EMPTY = "EMPTY"  # nothing left after trimming
    INVALID_PHONE = "INVALID_PHONE"  # not a possible phone number
    INVALID_EMAIL = "INVALID_EMAIL"  # not local@domain
    TOO_LONG = "TOO_LONG"  # over the size any real identifier has
    BLOCKED = "BLOCKED"  # on the strategy's blocked list: stored as observed, never links
    SUPPRESSED = "SUPPRESSED"  # belongs to an erased person


@dataclass(frozen=True, order=True)
class IdentityKey:
    """One normalized value of one key: the identity of an Identity node."""

    key: str
    value: str


@dataclass(frozen=True)
class NormalizedIdentity:
    """A raw value after normalization, with what is needed to audit it later."""

    key: str
    value: str  # normalized: the node's key
    raw: str  # as received (trimmed of nothing)
    rule: Normalization
    rule_version: str  # e.g. "E164/phonenumbers-9.0.43"; changes when the rule or its library changes

    @property
    def identity(self) -> IdentityKey:
        return IdentityKey(self.key, self.value)


@dataclass(frozen=True)
class Rejection:
    key: str
    reason: RejectionReason
    detail: str = ""  # a short human explanation; never contains the raw value


@dataclass(frozen=True)
class StoredIdentity:
    """An Identity node as read from the graph."""

    key: str
    value: str
    rule: str
    rule_version: str
    blocked: bool  # on the blocked list: never links
    saturated: bool  # shared by more profiles than the fan-out limit: stopped linking
    profile_count: int  # profiles holding it (linking or not)

    @property
    def identity(self) -> IdentityKey:
        return IdentityKey(self.key, self.value)

    @property
    def linking(self) -> bool:
        return not (self.blocked or self.saturated)


@dataclass(frozen=True)
class IdentityLink:
    """A profile holding an identity: a HAS_IDENTITY (linking) or OBSERVED (non-linking) edge."""

    profile_id: str
    key: str
    value: str
    raw: str
    source: str
    first_seen: datetime
    last_seen: datetime
    linking: bool


@dataclass(frozen=True)
class Profile:
    """One record of a person in one source system."""

    id: str
    source: str
    source_id: str | None
    created_at: datetime
    updated_at: datetime
    attributes: Mapping[str, Scalar] = field(default_factory=dict)
    attribute_times: Mapping[str, datetime] = field(default_factory=dict)  # when each attribute was last set
    identities: tuple[IdentityKey, ...] = ()


@dataclass(frozen=True)
class MergeEdge:
    """An explicit, reversible merge: source profile merged into target profile."""

    source_profile_id: str
    target_profile_id: str
    at: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class Component:
    """The connected component of profiles as read from the graph, before domain rules are applied."""

    profiles: tuple[Profile, ...]
    identities: tuple[StoredIdentity, ...]
    links: tuple[IdentityLink, ...]
    merges: tuple[MergeEdge, ...]
    truncated: bool = False  # the component was larger than the size bound; only part of it was read


@dataclass(frozen=True)
class AttributeValue:
    """The surviving value of one attribute, with where it came from."""

    name: str
    value: Scalar
    profile_id: str
    source: str
    updated_at: datetime


@dataclass(frozen=True)
class ConflictReport:
    """A customer holding more values of a key than the strategy allows (max_per_customer)."""

    key: str
    values: tuple[str, ...]
    limit: int


class Assurance(StrEnum):
    """How strongly the search keys identify the customer."""

    STRONG = "STRONG"  # a secondary key matched, or two different keys agree
    WEAK = "WEAK"  # a single primary key matched
    NONE = "NONE"  # nothing matched


@dataclass(frozen=True)
class Customer:
    """A resolved customer: a connected component with the strategy's rules applied."""

    id: str
    profiles: tuple[Profile, ...]
    identities: tuple[StoredIdentity, ...]
    links: tuple[IdentityLink, ...]
    merges: tuple[MergeEdge, ...]
    attributes: Mapping[str, AttributeValue]
    skills: tuple[str, ...]
    conflicts: tuple[ConflictReport, ...]
    truncated: bool


class ResolutionStatus(StrEnum):
    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    AMBIGUOUS = "AMBIGUOUS"


class IgnoredReason(StrEnum):
    """Why a search key that exists in the graph was not used to pick a customer."""

    BLOCKED = "BLOCKED"
    SATURATED = "SATURATED"


@dataclass(frozen=True)
class IgnoredKey:
    key: str
    value: str
    reason: IgnoredReason


@dataclass(frozen=True)
class Resolution:
    status: ResolutionStatus
    customer: Customer | None
    candidates: tuple[Customer, ...]
    matched_on: tuple[IdentityKey, ...]
    assurance: Assurance
    rejected: tuple[Rejection, ...] = ()
    ignored: tuple[IgnoredKey, ...] = ()
