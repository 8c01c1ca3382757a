"""What the use cases need from storage. app/db implements it on Neo4j; nothing here knows Neo4j."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.domain.changes import Audit, ChangeEvent, ChangeType
from app.domain.folding import Fold, FoldOutcome
from app.domain.model import (
    Component,
    ErasureHashes,
    ErasurePlan,
    ErasureReceipt,
    Explanation,
    ExportRow,
    IdentityKey,
    NormalizedIdentity,
    Scalar,
    StoredIdentity,
)
from app.errors import InvalidInput, Suppressed


@dataclass(frozen=True)
class ProfileWrite:
    """One profile's share of an upsert batch, already normalized and checked by the services."""

    mode: str  # "source": by (source, source_id); "id": into profile_id; "new": a new record with new_id
    new_id: str
    source: str
    source_id: str | None
    profile_id: str | None
    attributes: Mapping[str, Scalar]
    identities: tuple[NormalizedIdentity, ...]
    blocked: frozenset[IdentityKey]
    suppression_hashes: tuple[str, ...]  # keyed hash of each identity, in order (checked under the identity's lock)
    # Keyed hash of the record the row names: its (source, source_id) in mode "source", its profile id in mode "id"
    # (checked once the profile is locked or created); None for a new record.
    record_hash: str | None = None


class SuppressedMeanwhile(Suppressed):
    """An upsert found, under its locks, identity values or records on the suppression list (erased after the
    caller's checks). Nothing was written; the caller refuses or leaves out what they belong to and writes again."""

    def __init__(self, hashes: frozenset[str]) -> None:
        super().__init__("the identities given belong to an erased person")
        self.hashes = hashes


class TooManyIdentities(InvalidInput):
    """An upsert would leave profiles holding more identities than the limit per profile (counted under the profiles'
    locks, what they held before included). Nothing was written; `refused` maps the position of each row that writes
    to such a profile to the reason, and the caller refuses those rows and writes the others again."""

    def __init__(self, refused: Mapping[int, str]) -> None:
        super().__init__(next(iter(refused.values()), "too many identities for one profile"))
        self.refused = dict(refused)


@dataclass(frozen=True)
class WriteOutcome:
    profile_id: str
    created: bool


@dataclass(frozen=True)
class ProfileComponent:
    """The profile ids a seed's component holds (size-bounded)."""

    profile_ids: tuple[str, ...]
    truncated: bool


@dataclass(frozen=True)
class Snapshot:
    """What one read transaction saw: the seed identities, each seed's component, and every profile of them."""

    identities: tuple[StoredIdentity, ...]
    components: Mapping[str | IdentityKey, ProfileComponent]
    details: Component

    def component(self, part: ProfileComponent) -> Component:
        members = set(part.profile_ids)
        links = tuple(link for link in self.details.links if link.profile_id in members)
        held = {IdentityKey(link.key, link.value) for link in links}
        return Component(
            profiles=tuple(p for p in self.details.profiles if p.id in members),
            identities=tuple(i for i in self.details.identities if i.identity in held),
            links=links,
            merges=tuple(m for m in self.details.merges if m.source_profile_id in members),
            truncated=part.truncated,
        )


class Repository(Protocol):
    async def read_identities(
        self,
        keys: Sequence[IdentityKey],
        *,
        max_nodes: int,
        candidates: int = 5,
        consistency: str | None = None,
        leader: bool = False,
    ) -> Snapshot:
        """In one read: the identities found, the components of the linking ones, for a saturated one those of
        up to `candidates` of its holders (keyed by the holder's profile id), and every profile of them. `leader`:
        read where writes go (in a cluster), so the answer does not lag the last write."""
        ...

    async def suppress_absent(
        self,
        identities: Sequence[IdentityKey],
        hashes: Sequence[str],
        *,
        request_id: str,
        requested_by: str,
        reason: str,
        now: datetime,
    ) -> ErasureReceipt | None:
        """Suppress values no profile holds, with a receipt that deleted nothing; None, writing nothing, when a
        profile holds one of them after all (the caller erases its customer instead)."""
        ...

    async def read_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> Snapshot:
        """In one read: the components of these profiles (keyed by profile id) and every profile of them."""
        ...

    async def upsert_profiles(
        self,
        rows: Sequence[ProfileWrite],
        *,
        now: datetime,
        max_profiles_per_identity: int,
        snapshot_nodes: int | None = None,
        max_identities_per_profile: int = 0,
        contest_limits: Mapping[str, int] | None = None,
        audit: Audit,
    ) -> tuple[list[WriteOutcome | None], str, Snapshot | None]:
        """Outcomes in row order (None: the row named a profile id that does not exist), a consistency token, and
        when snapshot_nodes is given, the stored profiles' components read in the same transaction. Raises
        SuppressedMeanwhile, writing nothing, when an identity's suppression hash is on the suppression list, and
        TooManyIdentities, writing nothing, when a profile would hold more than max_identities_per_profile
        identities (0: no limit). Every write method records its events (docs/changes.md), by `audit`, in its own
        transaction: none when it changed nothing or wrote nothing."""
        ...

    async def components_of_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> dict[str, ProfileComponent]: ...

    async def merge_profiles(
        self,
        source_id: str,
        target_id: str,
        *,
        now: datetime,
        by: str,
        reason: str,
        max_nodes: int,
        check: Callable[[Snapshot], None] = ...,
        audit: Audit,
    ) -> str | None:
        """Locks both customers whole, reads them (a Snapshot keyed by the two profile ids) and calls `check`, which
        may raise to refuse, then merges, all in one transaction; a consistency token, or None when either profile
        does not exist."""
        ...

    async def suppressed_among(self, hashes: Sequence[str]) -> set[str]:
        """The given keyed hashes that are on the suppression list."""
        ...

    async def unmerge_profiles(self, source_id: str, target_id: str, *, audit: Audit) -> tuple[bool, str]: ...

    async def unlink_identity(
        self,
        profile_id: str,
        key: IdentityKey,
        *,
        contest_limits: Mapping[str, int] | None = None,
        max_profiles_per_identity: int = 0,
        now: datetime | None = None,
        audit: Audit,
    ) -> tuple[bool, str]:
        """Remove one profile's edge to an identity; with `contest_limits` (the strategy's), re-evaluate the
        contested rule for the identity and the profile's other identities in the same transaction."""
        ...

    async def explain(self, profile_a: str, profile_b: str, *, max_nodes: int) -> Explanation | None:
        """The shortest chain of links between two profiles (not connected: no steps); None when either does not
        exist. Raises Conflict when neither customer can be walked whole within max_nodes nodes."""
        ...

    async def erasure_plan(self, profile_ids: Sequence[str]) -> ErasurePlan: ...

    async def count_contested(self) -> int:
        """How many identities are contested now (the contested rule of app/domain/fanout.py)."""
        ...

    async def erase(
        self,
        profile_id: str,
        *,
        whole_customer: bool,
        max_nodes: int,
        suppression_hashes: Callable[[ErasurePlan], ErasureHashes],
        request_id: str,
        requested_by: str,
        reason: str,
        now: datetime,
        contest_limits: Mapping[str, int] | None = None,
        max_profiles_per_identity: int = 0,
        change: ChangeType | None = None,
    ) -> ErasureReceipt | None:
        """In one transaction: the receipt of request_id if it exists for this subject (Conflict if it names
        another); else the profile (or its whole customer, read under locks so no profile joins it meanwhile), the
        identities no other profile holds, and the merge edges deleted, the keyed hashes `suppression_hashes` gives
        for the plan (values, records) added to the suppression list, and a receipt recorded with its subject. None
        when the profile does not exist. Raises Conflict for a customer of more than max_nodes nodes. With
        `contest_limits`, the identities other profiles keep are re-evaluated (the contested rule): they lost
        holders."""
        ...

    async def erasure_receipt(self, request_id: str) -> ErasureReceipt | None: ...

    def export_rows(self, *, batch_size: int) -> AsyncIterator[ExportRow]:
        """Every profile in id order with the oldest profile of its whole component as customer_id, streamed;
        `batch_size` profiles per page."""
        ...


class MaintenanceStore(Protocol):
    """What the clean-up use cases need from storage: the retention purge and renormalize (app/bulk/).
    app/db/maintenance.py implements it on Neo4j."""

    async def inactive_profiles(
        self, before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[tuple[str, datetime]]: ...

    async def next_identity_key(self, after: str) -> str | None: ...

    async def identity_page(self, key: str, after: str, limit: int) -> list[StoredIdentity]: ...

    async def set_identity_rules(self, identities: Sequence[NormalizedIdentity]) -> int: ...

    async def block_identities(
        self,
        keys: Sequence[IdentityKey],
        *,
        now: datetime,
        contest_limits: Mapping[str, int] | None = None,
        max_profiles_per_identity: int = 0,
    ) -> int: ...

    async def fold(
        self,
        folds: Sequence[Fold],
        *,
        limit: int,
        now: datetime,
        dry_run: bool = False,
        contest_limits: Mapping[str, int] | None = None,
        audit: Audit,
    ) -> FoldOutcome: ...


# -- retention purge ------------------------------------------------------------------------------------------


# -- change log -----------------------------------------------------------------------------------------------


class ChangeLog(Protocol):
    """Reading the change log (app/domain/changes.py). The events themselves are written by the repository's write
    methods, in the transaction of the change they describe."""

    async def changes(
        self,
        *,
        after: int,
        limit: int,
        types: frozenset[ChangeType] | None = None,
        profile_ids: Sequence[str] | None = None,
        customer_id: str | None = None,
        through: int | None = None,
    ) -> list[ChangeEvent]:
        """Up to `limit` events with seq > `after`, in seq order. `types`: only these types. `profile_ids`: only events
        naming one of these profiles; `customer_id`: only events whose customer before or after is this id (with
        both filters: events matching either; the inspector's history of a customer and its former profiles).
        `through`: only events with seq <= through (a filtered poller reads last_change() first, then up to it, and
        may move its cursor there when the page is not full: every event up to it was committed before it)."""
        ...

    async def last_change(self) -> int:
        """The seq of the newest event (0: none yet)."""
        ...
