"""The writing use cases: upsert (single, batch and bulk), link, merge, unmerge, unlink; each checks the
suppression list under the locks of its own transaction."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass

from app.domain.changes import Audit
from app.domain.conflicts import find_conflicts
from app.domain.model import (
    Customer,
    IdentityKey,
    NormalizedIdentity,
    ProfileInput,
    Rejection,
    RejectionReason,
    StoredIdentity,
    UpsertResult,
)
from app.domain.normalize import normalize, normalize_many
from app.domain.strategy import OnSuppressedValue
from app.domain.suppression import profile_hash, record_hash, suppression_hash
from app.domain.validation import check_id, check_profile_input
from app.errors import AppError, Conflict, InvalidInput, NotFound, Suppressed
from app.services.base import distinct_customers, reasons
from app.services.ports import (
    ProfileComponent,
    ProfileWrite,
    Snapshot,
    SuppressedMeanwhile,
    TooManyIdentities,
    WriteOutcome,
)
from app.services.resolve import Reads

logger = logging.getLogger(__name__)

PREPARE_INLINE = 16  # inputs prepared on the event loop; a larger batch (bulk ingest) is prepared in a thread

_ERASED_RECORD = "this source record was erased; it cannot be written again"
_ERASED_PROFILE = "this profile was erased"

# The change log's actor of a write whose caller named nobody: every edge (GraphQL, REST, the CRM webhook, the CLI,
# the retention job) passes its own Audit; this default only spares the use-case tests from naming one.
UNATTRIBUTED = Audit("unattributed")


@dataclass(frozen=True)
class Prepared:
    """An upsert input after validation, normalization and the suppression check."""

    write: ProfileWrite
    rejected: tuple[Rejection, ...]


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one input of a bulk load: stored (with the values it rejected), or refused with an error."""

    profile_id: str | None
    created: bool
    rejected: tuple[Rejection, ...]
    error: AppError | None


class Writes(Reads):
    async def upsert_profile(self, item: ProfileInput, *, audit: Audit = UNATTRIBUTED) -> UpsertResult:
        return (await self.upsert_profiles([item], audit=audit))[0]

    async def upsert_profiles(
        self, items: Sequence[ProfileInput], *, audit: Audit = UNATTRIBUTED
    ) -> list[UpsertResult]:
        """Store profiles with their identities and attributes; bad single values are listed, the rest stored. The
        change log records what changed, by `audit`, in the same transaction."""
        if not items:
            return []
        prepared, outcomes, token, snapshot = await self._store(items, snapshot_nodes=self._max_nodes, audit=audit)
        failed = [(n, p) for n, p in enumerate(prepared) if isinstance(p, AppError)]
        if failed:
            n, error = failed[0]
            assert isinstance(error, AppError)
            if len(items) > 1:
                raise type(error)(f"inputs[{n}]: {error.message}")
            raise error
        ready = [p for p in prepared if isinstance(p, Prepared)]
        for outcome, p in zip(outcomes, ready, strict=True):
            if outcome is None:
                raise NotFound(f"no profile with id {p.write.profile_id}")
        assert snapshot is not None
        customers = self._customers_of(snapshot)
        results: list[UpsertResult] = []
        for outcome, p in zip(outcomes, ready, strict=True):
            assert outcome is not None
            customer = customers.get(outcome.profile_id)
            if customer is None:  # the snapshot is read in the writing transaction: this cannot happen
                raise NotFound(f"no profile with id {outcome.profile_id}")
            profile = next(pr for pr in customer.profiles if pr.id == outcome.profile_id)
            results.append(UpsertResult(profile, customer, outcome.created, p.rejected, token))
        logger.info("upserted %d profiles (%d created)", len(results), sum(r.created for r in results))
        return results

    async def ingest_batch(self, items: Sequence[ProfileInput], *, audit: Audit = UNATTRIBUTED) -> list[IngestOutcome]:
        """Bulk path: store what is usable in one write transaction, report per input, build no customers."""
        prepared, outcomes, _, _ = await self._store(items, snapshot_nodes=None, audit=audit)
        stored = iter(outcomes)
        report: list[IngestOutcome] = []
        for p in prepared:
            if isinstance(p, AppError):
                report.append(IngestOutcome(None, False, (), p))
                continue
            outcome = next(stored)
            if outcome is None:
                report.append(
                    IngestOutcome(None, False, p.rejected, NotFound(f"no profile with id {p.write.profile_id}"))
                )
            else:
                report.append(IngestOutcome(outcome.profile_id, outcome.created, p.rejected, None))
        return report

    async def _store(
        self, items: Sequence[ProfileInput], *, snapshot_nodes: int | None, audit: Audit
    ) -> tuple[list[Prepared | AppError], list[WriteOutcome | None], str, Snapshot | None]:
        """Prepare and write the usable inputs in one transaction. The suppression list is read by that transaction
        under the identities' locks (an erasure commits wholly before or after it); when it holds a value, nothing
        is written and the inputs are prepared again without that value. Likewise an input that would leave its
        profile holding more identities than the strategy allows (counted in that transaction) is refused, and the
        others are written again without it."""
        suppressed: set[str] = set()
        too_many: dict[int, AppError] = {}  # input position -> its refusal
        while True:
            # A bulk batch is prepared off the event loop: another batch's transaction holds the change log's
            # sequence lock from its last statement until the loop gets round to sending its commit.
            fresh = (
                await asyncio.to_thread(self.prepare, items, frozenset(suppressed))
                if len(items) > PREPARE_INLINE
                else self.prepare(items, suppressed)
            )
            prepared = [too_many.get(n, p) for n, p in enumerate(fresh)]
            if snapshot_nodes is not None and any(isinstance(p, AppError) for p in prepared):
                return prepared, [], "", None
            ready = [p.write for p in prepared if isinstance(p, Prepared)]
            if not ready:
                return prepared, [], "", None
            try:
                outcomes, token, snapshot = await self.repo.upsert_profiles(
                    ready,
                    now=self._clock(),
                    max_profiles_per_identity=self.strategy.protections.max_profiles_per_identity,
                    snapshot_nodes=snapshot_nodes,
                    max_identities_per_profile=self.strategy.protections.max_identities_per_profile,
                    contest_limits=self.strategy.contest_limits,
                    audit=audit,
                )
            except TooManyIdentities as found:
                positions = [n for n, p in enumerate(prepared) if isinstance(p, Prepared)]
                too_many.update({positions[row]: InvalidInput(reason) for row, reason in found.refused.items()})
                continue
            except SuppressedMeanwhile as found:
                if found.hashes <= suppressed:  # cannot happen: those values were left out
                    raise
                suppressed |= found.hashes
                continue
            return prepared, outcomes, token, snapshot

    def prepare(self, items: Sequence[ProfileInput], suppressed: Set[str] = frozenset()) -> list[Prepared | AppError]:
        """Validate and normalize each input against what is known to be on the suppression list (`suppressed`, keyed
        hashes): a record that names an erased record is refused; one that carries an erased value is refused whole,
        or stored without the value (strategy: on_suppressed_value). An input that cannot be used gets its error."""
        prepared: list[Prepared | AppError] = []
        hashes: dict[IdentityKey, str] = {}
        drop = self.strategy.protections.on_suppressed_value is OnSuppressedValue.DROP_VALUE
        for item in items:
            try:
                check_profile_input(item)
            except AppError as error:
                prepared.append(error)
                continue
            record = self._record_hash(item)
            if record is not None and record in suppressed:
                prepared.append(Suppressed(_ERASED_RECORD if item.profile_id is None else _ERASED_PROFILE))
                continue
            accepted, rejected = normalize_many(self.strategy, item.identities)
            kept: list[tuple[NormalizedIdentity, str]] = []
            erased: list[Rejection] = []
            for n in accepted:
                hashed = hashes.get(n.identity)
                if hashed is None:
                    hashed = hashes[n.identity] = suppression_hash(self._erasure_key, n.identity)
                if hashed in suppressed:
                    erased.append(Rejection(n.key, RejectionReason.SUPPRESSED, "belongs to an erased person"))
                else:
                    kept.append((n, hashed))
            rejected = rejected + erased
            if erased and not drop:
                keys = ", ".join(sorted({r.key for r in erased}))
                prepared.append(Suppressed(f"the record carries a value of an erased person ({keys}); refused whole"))
            elif not kept and erased:
                prepared.append(Suppressed("the identities given belong to an erased person"))
            elif not kept and not item.attributes and item.identities:
                prepared.append(InvalidInput("no usable identity: " + reasons(rejected)))
            elif not kept and not item.attributes:
                prepared.append(InvalidInput("nothing to store: give identities or attributes"))
            else:
                prepared.append(Prepared(self._write_of(item, kept, record), tuple(rejected)))
        return prepared

    def _record_hash(self, item: ProfileInput) -> str | None:
        """The suppression hash of the record an input names: its profile id, or its (source, source_id)."""
        if item.profile_id is not None:
            return profile_hash(self._erasure_key, item.profile_id)
        if item.source_id is not None:
            return record_hash(self._erasure_key, item.source, item.source_id)
        return None

    def _write_of(
        self, item: ProfileInput, kept: list[tuple[NormalizedIdentity, str]], record: str | None
    ) -> ProfileWrite:
        identities = [n for n, _ in kept]
        if item.profile_id is not None:
            mode = "id"
        elif item.source_id is not None:
            mode = "source"
        else:
            mode = "new"
        return ProfileWrite(
            mode=mode,
            new_id=str(uuid.uuid4()),
            source=item.source,
            source_id=item.source_id.strip() if item.source_id is not None else None,
            profile_id=item.profile_id,
            attributes=dict(item.attributes),
            identities=tuple(identities),
            blocked=frozenset(n.identity for n in identities if self.strategy.is_blocked(n.identity)),
            suppression_hashes=tuple(h for _, h in kept),
            record_hash=record,
        )

    async def merge_profiles(
        self,
        source_id: str,
        target_id: str,
        *,
        actor: str,
        reason: str = "",
        force: bool = False,
        request_id: str | None = None,
    ) -> Customer:
        """Merge source into target with an explicit, reversible edge. Refuses to create a conflict unless forced;
        the check runs in the merging transaction, with both customers locked."""
        check_id(source_id, "sourceProfileId")
        check_id(target_id, "targetProfileId")
        if source_id == target_id:
            raise InvalidInput("cannot merge a profile into itself")

        def check(snapshot: Snapshot) -> None:
            if not force:
                self._refuse_new_conflicts(snapshot, snapshot.components[source_id], snapshot.components[target_id])

        token = await self.repo.merge_profiles(
            source_id,
            target_id,
            now=self._clock(),
            by=actor,
            reason=reason,
            max_nodes=self._max_nodes,
            check=check,
            audit=Audit(actor, request_id, reason or None),
        )
        if token is None:
            await self._refuse_erased([source_id, target_id])
            raise NotFound("no profile with one of the ids given")
        logger.info("merged profile %s into %s", source_id, target_id)
        customer = await self.customer(target_id, consistency=token)
        if customer is None:
            raise NotFound(f"no profile with id {target_id}")
        return customer

    async def _refuse_erased(self, profile_ids: Sequence[str]) -> None:
        """SUPPRESSED when one of these (missing) profiles was erased, rather than a plain NOT_FOUND."""
        hashes = {profile_hash(self._erasure_key, pid): pid for pid in profile_ids}
        erased = await self.repo.suppressed_among(sorted(hashes))
        if erased:
            raise Suppressed(f"profile {hashes[min(erased)]} was erased")

    def _counts(self, stored: StoredIdentity) -> bool:
        return stored.linking and not self.strategy.is_blocked(stored.identity)

    def _refuse_new_conflicts(self, snapshot: Snapshot, a: ProfileComponent, b: ProfileComponent) -> None:
        if set(a.profile_ids) & set(b.profile_ids):
            return  # already one customer: the merge adds no identity to it
        # As build_customer counts conflicts: linking values the strategy does not block (now).
        keys_a = [s.identity for s in snapshot.component(a).identities if self._counts(s)]
        keys_b = [s.identity for s in snapshot.component(b).identities if self._counts(s)]
        existing = {c.key for c in find_conflicts(self.strategy, keys_a)} | {
            c.key for c in find_conflicts(self.strategy, keys_b)
        }
        new = [c for c in find_conflicts(self.strategy, keys_a + keys_b) if c.key not in existing]
        if new:
            c = new[0]
            raise Conflict(
                f"merging would give one customer {len(c.values)} values of {c.key} (at most {c.limit} allowed); "
                "pass force to merge anyway"
            )

    async def unmerge_profiles(
        self, source_id: str, target_id: str, *, actor: str, request_id: str | None = None
    ) -> list[Customer]:
        """Remove a merge edge; returns the customers of both profiles afterwards (one if still linked)."""
        check_id(source_id, "sourceProfileId")
        check_id(target_id, "targetProfileId")
        removed, token = await self.repo.unmerge_profiles(source_id, target_id, audit=Audit(actor, request_id))
        if not removed:
            raise NotFound("no merge of that source profile into that target profile")
        logger.info("unmerged profile %s from %s by %s", source_id, target_id, actor)
        return distinct_customers(await self.customers([source_id, target_id], consistency=token))

    async def unlink_identity(
        self, profile_id: str, key: str, value: str, *, actor: str, request_id: str | None = None
    ) -> Customer | None:
        """Detach one identity from a profile; returns the profile's customer afterwards."""
        check_id(profile_id, "profileId")
        normalized = normalize(self.strategy, key, value)
        if isinstance(normalized, Rejection):
            raise InvalidInput(f"{key}: {normalized.reason.value}: {normalized.detail}")
        removed, token = await self.repo.unlink_identity(
            profile_id,
            normalized.identity,
            contest_limits=self.strategy.contest_limits,
            max_profiles_per_identity=self.strategy.protections.max_profiles_per_identity,
            now=self._clock(),
            audit=Audit(actor, request_id),
        )
        if not removed:
            raise NotFound("that profile does not hold that identity")
        logger.info("unlinked a %s identity from profile %s by %s", key, profile_id, actor)
        return await self.customer(profile_id, consistency=token)
