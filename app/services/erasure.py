"""Erasure: cascade deletes with a receipt and the suppression list, previews, opt-outs for absent values."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.domain.changes import ChangeType
from app.domain.model import (
    ErasureHashes,
    ErasurePlan,
    ErasureReceipt,
    IdentityKey,
    NormalizedIdentity,
)
from app.domain.normalize import normalize, normalize_many
from app.domain.suppression import profile_hash, record_hash, suppression_hash
from app.domain.validation import check_id
from app.errors import Conflict, InvalidInput, NotFound
from app.services.base import reasons
from app.services.writes import Writes

logger = logging.getLogger(__name__)

MAX_ERASURE_NODES = 100_000

# Erasure request ids of the CRM webhook ("webhook:<event id>"): no other caller may use them, so nobody can pre-empt
# a CRM opt-out by taking its request id first.
WEBHOOK_REQUEST_PREFIX = "webhook:"

# Erasure request ids of retention purges ("purge:<date>:<profile id>"): only an erasure that suppresses nothing may
# use them, so a purge's receipt never stands in for an opt-out, and nobody can hold a purge back by taking its id.
PURGE_REQUEST_PREFIX = "purge:"


class Erasures(Writes):
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
            contest_limits=self.strategy.contest_limits,
            max_profiles_per_identity=self.strategy.protections.max_profiles_per_identity,
            # A purge's event says so; an erasure's is CUSTOMER_ERASED or PROFILE_ERASED (the repository's default).
            change=ChangeType.RETENTION_PURGE if request_id.startswith(PURGE_REQUEST_PREFIX) else None,
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
            raise InvalidInput("no usable identity to suppress: " + reasons(rejected))
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
