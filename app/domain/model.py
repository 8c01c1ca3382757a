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
    raw: str  # as received, trimmed (at most normalize.MAX_VALUE_LENGTH characters: longer values are refused)
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
    # Contested (app/domain/fanout.py `contested_by`): its holders hold `contested_values` values of
    # `contested_key`, more than its max_per_customer: stopped linking until the conflict goes away.
    contested_key: str | None = None
    contested_values: int = 0

    @property
    def identity(self) -> IdentityKey:
        return IdentityKey(self.key, self.value)

    @property
    def contested(self) -> bool:
        return self.contested_key is not None

    @property
    def linking(self) -> bool:
        return not (self.blocked or self.saturated or self.contested)


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
    CONTESTED = "CONTESTED"  # its holders hold too many values of a max_per_customer key: it names no one person


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


@dataclass(frozen=True)
class ProfileInput:
    """One profile to upsert: by (source, source_id), into an existing profile by id, or as a new record."""

    source: str
    identities: tuple[tuple[str, str], ...]  # (key, raw value)
    source_id: str | None = None
    profile_id: str | None = None
    attributes: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class UpsertResult:
    profile: Profile
    customer: Customer
    created: bool
    rejected: tuple[Rejection, ...]
    consistency_token: str


@dataclass(frozen=True)
class ExplanationStep:
    """One hop of the chain joining two profiles: through a shared identity, or through a merge edge."""

    from_profile_id: str
    to_profile_id: str
    via: str  # "IDENTITY" or "MERGE"
    identity: IdentityKey | None = None
    from_link: IdentityLink | None = None
    to_link: IdentityLink | None = None
    merge: MergeEdge | None = None


@dataclass(frozen=True)
class Explanation:
    profile_ids: tuple[str, str]
    connected: bool
    steps: tuple[ExplanationStep, ...]
    # Not connected: contested identities both sides hold, which would have joined them (the chain they cut).
    cut_by: tuple[StoredIdentity, ...] = ()


@dataclass(frozen=True)
class ErasedRecord:
    """A profile an erasure deletes, as its source system names it (suppressed with it, as a keyed hash)."""

    profile_id: str
    source: str
    source_id: str | None


@dataclass(frozen=True)
class ErasurePlan:
    """What an erasure deletes: every profile of the customer and the identities no remaining profile uses."""

    profile_ids: tuple[str, ...]
    identities: tuple[IdentityKey, ...]  # deleted; the others the customer held stay (still used elsewhere)
    kept_identities: tuple[IdentityKey, ...]
    records: tuple[ErasedRecord, ...] = ()  # the deleted profiles' source records


@dataclass(frozen=True)
class ErasureHashes:
    """What an erasure adds to the suppression list: keyed hashes of its values, and of its records and profile ids."""

    values: tuple[str, ...]
    records: tuple[str, ...]


@dataclass(frozen=True)
class ErasureReceipt:
    """Proof of an erasure that holds no personal data."""

    request_id: str
    status: str  # COMPLETED
    requested_by: str
    reason: str
    at: datetime
    profiles_deleted: int
    identities_deleted: int
    suppressed: int  # identity values added to the suppression list
    records_suppressed: int = 0  # source records and profile ids added to it


@dataclass(frozen=True)
class ExportRow:
    profile_id: str
    source: str
    source_id: str | None
    customer_id: str
