"""Use cases of idgraph. They depend on the Repository port and the pure domain, never on Neo4j or HTTP."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime

from app.domain.assurance import assess
from app.domain.conflicts import find_conflicts
from app.domain.customer import build_customer
from app.domain.model import (
    Assurance,
    Customer,
    ErasureHashes,
    ErasurePlan,
    ErasureReceipt,
    Explanation,
    ExportRow,
    IdentityKey,
    IgnoredKey,
    IgnoredReason,
    NormalizedIdentity,
    Profile,
    ProfileInput,
    Rejection,
    RejectionReason,
    Resolution,
    ResolutionStatus,
    UpsertResult,
)
from app.domain.normalize import normalize, normalize_many
from app.domain.strategy import OnSuppressedValue, Strategy
from app.domain.suppression import Secret, profile_hash, record_hash, suppression_hash
from app.domain.validation import check_id, check_profile_input, check_search_keys
from app.errors import AppError, Conflict, InvalidInput, NotFound, Suppressed
from app.ports import (
    ProfileComponent,
    ProfileWrite,
    Repository,
    Snapshot,
    SuppressedMeanwhile,
    TooManyIdentities,
    WriteOutcome,
)

logger = logging.getLogger(__name__)

MAX_ERASURE_NODES = 100_000

# Erasure request ids of the CRM webhook ("webhook:<event id>"): no other caller may use them, so nobody can pre-empt
# a CRM opt-out by taking its request id first.
WEBHOOK_REQUEST_PREFIX = "webhook:"

# Erasure request ids of retention purges ("purge:<date>:<profile id>"): only an erasure that suppresses nothing may
# use them, so a purge's receipt never stands in for an opt-out, and nobody can hold a purge back by taking its id.
PURGE_REQUEST_PREFIX = "purge:"

_ERASED_RECORD = "this source record was erased; it cannot be written again"
_ERASED_PROFILE = "this profile was erased"


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class IdentityService:
    def __init__(
        self,
        repo: Repository,
        strategy: Strategy,
        erasure_key: Secret,
        *,
        max_component_nodes: int = 2000,
        max_candidates: int = 5,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repo = repo
        self.strategy = strategy
        self._erasure_key = erasure_key
        self._max_nodes = max_component_nodes
        self._max_candidates = max_candidates
        self._clock = clock

    # -- reads ------------------------------------------------------------------------------------------------

    def normalize(self, key: str, raw: str) -> NormalizedIdentity | Rejection:
        return normalize(self.strategy, key, raw)

    async def resolve(
        self, identities: Sequence[tuple[str, str]], *, consistency: str | None = None, leader: bool = False
    ) -> Resolution:
        """Who is this? Never writes: an unknown caller leaves no trace. `leader`: read where writes go, for a
        decision that must not rest on a lagging replica (the CRM webhook's erasures)."""
        check_search_keys(len(identities))
        accepted, rejected = normalize_many(self.strategy, identities)
        if not accepted:
            raise InvalidInput("no usable identity to resolve: " + _reasons(rejected))
        keys = [n.identity for n in accepted]
        snapshot = await self.repo.read_identities(
            keys, max_nodes=self._max_nodes, candidates=self._max_candidates, consistency=consistency, leader=leader
        )
        ignored: list[IgnoredKey] = []
        for s in snapshot.identities:
            if s.blocked or self.strategy.is_blocked(s.identity):
                ignored.append(IgnoredKey(s.key, s.value, IgnoredReason.BLOCKED))
            elif s.saturated:
                ignored.append(IgnoredKey(s.key, s.value, IgnoredReason.SATURATED))
        linking = [
            (k, c)
            for k, c in snapshot.components.items()
            if isinstance(k, IdentityKey) and not self.strategy.is_blocked(k)
        ]
        groups = _group(linking)
        now = self._clock()
        if len(groups) == 1:
            matched, part = groups[0]
            customer = build_customer(self.strategy, snapshot.component(part), now)
            return Resolution(
                ResolutionStatus.FOUND,
                customer,
                (),
                tuple(sorted(matched)),
                assess(self.strategy, matched),
                tuple(rejected),
                tuple(ignored),
            )
        if len(groups) > 1:
            candidates = tuple(build_customer(self.strategy, snapshot.component(p), now) for _, p in groups)
            seeds = sorted(k for seeds, _ in groups for k in seeds)
            return Resolution(
                ResolutionStatus.AMBIGUOUS,
                None,
                candidates,
                tuple(seeds),
                Assurance.NONE,
                tuple(rejected),
                tuple(ignored),
            )
        saturated = [IdentityKey(i.key, i.value) for i in ignored if i.reason is IgnoredReason.SATURATED]
        holders = [(k, c) for k, c in snapshot.components.items() if isinstance(k, str)]
        if saturated and holders:
            # Shared by too many profiles to mean one person: say so, with a few candidates, never a guess.
            candidates = tuple(build_customer(self.strategy, snapshot.component(p), now) for _, p in _group(holders))
            return Resolution(
                ResolutionStatus.AMBIGUOUS,
                None,
                candidates,
                tuple(saturated),
                Assurance.NONE,
                tuple(rejected),
                tuple(ignored),
            )
        return Resolution(ResolutionStatus.NOT_FOUND, None, (), (), Assurance.NONE, tuple(rejected), tuple(ignored))

    async def customer(self, profile_id: str, *, consistency: str | None = None) -> Customer | None:
        check_id(profile_id, "profileId")
        return (await self.customers([profile_id], consistency=consistency))[0]

    async def customers(self, profile_ids: Sequence[str], *, consistency: str | None = None) -> list[Customer | None]:
        """Customers of several profiles, in order, from one read; profiles of one customer share one Customer."""
        snapshot = await self.repo.read_profiles(
            sorted(set(profile_ids)), max_nodes=self._max_nodes, consistency=consistency
        )
        built = self._customers_of(snapshot)
        return [built.get(pid) for pid in profile_ids]

    def _customers_of(self, snapshot: Snapshot) -> dict[str, Customer]:
        """Every customer a profiles snapshot holds, by the id of each of their profiles."""
        now = self._clock()
        built: dict[str, Customer] = {}
        for _, part in _group(list(snapshot.components.items())):
            customer = build_customer(self.strategy, snapshot.component(part), now)
            for profile in customer.profiles:
                built[profile.id] = customer
        return built

    async def profile(self, profile_id: str) -> Profile | None:
        customer = await self.customer(profile_id)
        return next((p for p in customer.profiles if p.id == profile_id), None) if customer else None

    async def explain(self, profile_a: str, profile_b: str) -> Explanation:
        check_id(profile_a, "profileId")
        check_id(profile_b, "profileId")
        if profile_a == profile_b:  # a profile is its own customer, with no link to show
            if await self.profile(profile_a) is None:
                raise NotFound("no such profile")
            return Explanation((profile_a, profile_b), True, ())
        explanation = await self.repo.explain(profile_a, profile_b, max_nodes=self._max_nodes)
        if explanation is None:
            raise NotFound("no such profile")
        return explanation

    def export_rows(self, page_size: int = 1000) -> AsyncIterator[ExportRow]:
        return self.repo.export_rows(page_size=page_size, max_nodes=self._max_nodes)

    # -- writes -----------------------------------------------------------------------------------------------

    async def upsert_profile(self, item: ProfileInput) -> UpsertResult:
        return (await self.upsert_profiles([item]))[0]

    async def upsert_profiles(self, items: Sequence[ProfileInput]) -> list[UpsertResult]:
        """Store profiles with their identities and attributes; bad single values are listed, the rest stored."""
        if not items:
            return []
        prepared, outcomes, token, snapshot = await self._store(items, snapshot_nodes=self._max_nodes)
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

    async def ingest_batch(self, items: Sequence[ProfileInput]) -> list[IngestOutcome]:
        """Bulk path: store what is usable in one write transaction, report per input, build no customers."""
        prepared, outcomes, _, _ = await self._store(items, snapshot_nodes=None)
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
        self, items: Sequence[ProfileInput], *, snapshot_nodes: int | None
    ) -> tuple[list[Prepared | AppError], list[WriteOutcome | None], str, Snapshot | None]:
        """Prepare and write the usable inputs in one transaction. The suppression list is read by that transaction
        under the identities' locks (an erasure commits wholly before or after it); when it holds a value, nothing
        is written and the inputs are prepared again without that value. Likewise an input that would leave its
        profile holding more identities than the strategy allows (counted in that transaction) is refused, and the
        others are written again without it."""
        suppressed: set[str] = set()
        too_many: dict[int, AppError] = {}  # input position -> its refusal
        while True:
            prepared = [too_many.get(n, p) for n, p in enumerate(self.prepare(items, suppressed))]
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
                prepared.append(InvalidInput("no usable identity: " + _reasons(rejected)))
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
        self, source_id: str, target_id: str, *, actor: str, reason: str = "", force: bool = False
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
            source_id, target_id, now=self._clock(), by=actor, reason=reason, max_nodes=self._max_nodes, check=check
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

    def _refuse_new_conflicts(self, snapshot: Snapshot, a: ProfileComponent, b: ProfileComponent) -> None:
        if set(a.profile_ids) & set(b.profile_ids):
            return  # already one customer: the merge adds no identity to it
        keys_a = [s.identity for s in snapshot.component(a).identities if s.linking]
        keys_b = [s.identity for s in snapshot.component(b).identities if s.linking]
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

    async def unmerge_profiles(self, source_id: str, target_id: str, *, actor: str) -> list[Customer]:
        """Remove a merge edge; returns the customers of both profiles afterwards (one if still linked)."""
        check_id(source_id, "sourceProfileId")
        check_id(target_id, "targetProfileId")
        removed, token = await self.repo.unmerge_profiles(source_id, target_id)
        if not removed:
            raise NotFound("no merge of that source profile into that target profile")
        logger.info("unmerged profile %s from %s by %s", source_id, target_id, actor)
        return _distinct(await self.customers([source_id, target_id], consistency=token))

    async def unlink_identity(self, profile_id: str, key: str, value: str, *, actor: str) -> Customer | None:
        """Detach one identity from a profile; returns the profile's customer afterwards."""
        check_id(profile_id, "profileId")
        normalized = normalize(self.strategy, key, value)
        if isinstance(normalized, Rejection):
            raise InvalidInput(f"{key}: {normalized.reason.value}: {normalized.detail}")
        removed, token = await self.repo.unlink_identity(profile_id, normalized.identity)
        if not removed:
            raise NotFound("that profile does not hold that identity")
        logger.info("unlinked a %s identity from profile %s by %s", key, profile_id, actor)
        return await self.customer(profile_id, consistency=token)

    # -- erasure ----------------------------------------------------------------------------------------------

    async def erasure_plan(self, profile_id: str, *, whole_customer: bool = True) -> ErasurePlan:
        check_id(profile_id, "profileId")
        if not whole_customer:
            if await self.profile(profile_id) is None:
                raise NotFound(f"no profile with id {profile_id}")
            return await self.repo.erasure_plan([profile_id])
        found = await self.repo.components_of_profiles([profile_id], max_nodes=MAX_ERASURE_NODES)
        if profile_id not in found:
            raise NotFound(f"no profile with id {profile_id}")
        if found[profile_id].truncated:
            raise Conflict(f"the customer has more than {MAX_ERASURE_NODES} nodes; erase its profiles one by one")
        return await self.repo.erasure_plan(found[profile_id].profile_ids)

    async def erase(
        self,
        profile_id: str,
        *,
        request_id: str,
        reason: str,
        actor: str,
        whole_customer: bool = True,
        suppress: bool = True,
        webhook: bool = False,
    ) -> ErasureReceipt:
        """Cascade-delete a customer (or one profile), suppress its values and records, keep a receipt without
        personal data.

        Idempotent on request_id for the same subject: a repeated request naming the profile (or one the erasure
        deleted) returns the first receipt; for another subject it is a CONFLICT and nothing is erased. Request ids
        starting with "webhook:" are the CRM webhook's (`webhook=True`) alone. `suppress=False` is for retention
        purges: data deleted for age, not at the person's request, may come back with a new sync.
        """
        check_id(profile_id, "profileId")
        check_id(request_id, "requestId")
        if request_id.startswith(WEBHOOK_REQUEST_PREFIX) and not webhook:
            raise InvalidInput(f"request ids starting with {WEBHOOK_REQUEST_PREFIX!r} are reserved for the CRM webhook")
        if request_id.startswith(PURGE_REQUEST_PREFIX) and suppress:
            raise InvalidInput(f"request ids starting with {PURGE_REQUEST_PREFIX!r} are reserved for retention purges")
        if not reason.strip():
            raise InvalidInput("an erasure needs a reason")

        def hashes(plan: ErasurePlan) -> ErasureHashes:
            if not suppress:
                return ErasureHashes((), ())
            key = self._erasure_key
            values = [suppression_hash(key, k) for k in self._suppressible(plan.identities)]
            named = [record_hash(key, r.source, r.source_id) for r in plan.records if r.source_id is not None]
            named += [profile_hash(key, r.profile_id) for r in plan.records]
            return ErasureHashes(tuple(values), tuple(named))

        receipt = await self.repo.erase(
            profile_id,
            whole_customer=whole_customer,
            max_nodes=MAX_ERASURE_NODES,
            suppression_hashes=hashes,
            request_id=request_id,
            requested_by=actor,
            reason=reason.strip(),
            now=self._clock(),
        )
        if receipt is None:
            raise NotFound(f"no profile with id {profile_id}")
        # The profile id, not the request id: a request id is the caller's free text within the id format, and
        # stewards do use account ids as ticket references (the failure suite's fuzzer did just that).
        logger.info(
            "erasure from profile %s: %d profiles, %d identities deleted, %d values suppressed",
            profile_id,
            receipt.profiles_deleted,
            receipt.identities_deleted,
            receipt.suppressed,
        )
        return receipt

    async def suppress_absent(
        self, identities: Sequence[tuple[str, str]], *, request_id: str, reason: str, actor: str
    ) -> ErasureReceipt | None:
        """An opt-out for a person idgraph holds nothing of: put the values on the suppression list anyway, so a later
        sync cannot create them, with a receipt that deleted nothing. None, writing nothing, when a profile holds one
        of the values after all (erase its customer instead). For the CRM webhook's request ids only."""
        check_id(request_id, "requestId")
        if not request_id.startswith(WEBHOOK_REQUEST_PREFIX):
            raise InvalidInput(f"suppressing absent values is for the CRM webhook's {WEBHOOK_REQUEST_PREFIX!r} ids")
        accepted, rejected = normalize_many(self.strategy, identities)
        if not accepted:
            raise InvalidInput("no usable identity to suppress: " + _reasons(rejected))
        keys = [n.identity for n in accepted]
        hashes = [suppression_hash(self._erasure_key, k) for k in self._suppressible(keys)]
        return await self.repo.suppress_absent(
            keys, hashes, request_id=request_id, requested_by=actor, reason=reason.strip(), now=self._clock()
        )

    def _suppressible(self, identities: Sequence[IdentityKey]) -> list[IdentityKey]:
        """The erased values to suppress: each as stored and, for a value stored under an older rule, as the strategy
        normalizes it today (what the next sync of it will carry); never a blocked value."""
        found: dict[IdentityKey, None] = {}
        for stored in identities:
            current = normalize(self.strategy, stored.key, stored.value)
            for form in (stored, current.identity if isinstance(current, NormalizedIdentity) else stored):
                if not self.strategy.is_blocked(form):
                    found[form] = None
        return list(found)

    async def erasure_receipt(self, request_id: str) -> ErasureReceipt | None:
        check_id(request_id, "requestId")
        return await self.repo.erasure_receipt(request_id)


def _group(
    found: Sequence[tuple[str | IdentityKey, ProfileComponent]],
) -> list[tuple[list[IdentityKey], ProfileComponent]]:
    """Seeds whose components share a profile are one customer; keeps first-seen order."""
    groups: list[tuple[list[IdentityKey], set[str], ProfileComponent]] = []
    for seed, component in found:
        ids = set(component.profile_ids)
        if not ids:
            continue
        for seeds, members, _ in groups:
            if members & ids:
                if isinstance(seed, IdentityKey):
                    seeds.append(seed)
                members |= ids
                break
        else:
            groups.append(([seed] if isinstance(seed, IdentityKey) else [], ids, component))
    return [(seeds, component) for seeds, _, component in groups]


def _distinct(customers: Iterable[Customer | None]) -> list[Customer]:
    seen: dict[str, Customer] = {}
    for c in customers:
        if c is not None:
            seen.setdefault(c.id, c)
    return list(seen.values())


def _reasons(rejected: Sequence[Rejection]) -> str:
    return ", ".join(f"{r.key}: {r.reason.value}" for r in rejected) or "none given"
