"""Erasure: the cascade delete, planned under the locks of the whole customer, with its receipt and the
suppression list, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from neo4j import AsyncTransaction

from app.db import records
from app.db.changes import Change, record_changes, saturations
from app.db.contest import contest
from app.db.statements import fetch, key_params
from app.db.transactions import Interfered
from app.db.writes import WriteRepository
from app.domain.changes import Audit, ChangeType
from app.domain.model import (
    ErasedRecord,
    ErasureHashes,
    ErasurePlan,
    ErasureReceipt,
    IdentityKey,
)
from app.errors import Conflict


async def _plan_in(tx: AsyncTransaction, profile_ids: Sequence[str]) -> ErasurePlan:
    """What erasing these profiles deletes (identities no other profile holds, source records) and keeps, read in
    `tx`."""
    rows = await fetch(tx, "erasure_plan", profile_ids=list(profile_ids))
    delete = sorted(IdentityKey(r["key"], r["value"]) for r in rows if not r["held_elsewhere"])
    keep = sorted(IdentityKey(r["key"], r["value"]) for r in rows if r["held_elsewhere"])
    erased = [
        ErasedRecord(str(r["profile_id"]), str(r["source"] or ""), r["source_id"])
        for r in await fetch(tx, "erased_records", profile_ids=list(profile_ids))
    ]
    return ErasurePlan(tuple(sorted(profile_ids)), tuple(delete), tuple(keep), tuple(erased))


def _repeated(props: Mapping[str, Any], request_id: str, profile_id: str) -> ErasureReceipt:
    """The receipt of a request id already used: the same one for the same subject (the profile it named or one it
    deleted); another subject is a CONFLICT, and nothing is erased. A receipt recorded before receipts kept their
    subject is taken as a repeat."""
    subject, erased = props.get("subject"), props.get("profile_ids")
    if subject is not None and profile_id != subject and profile_id not in (erased or ()):
        raise Conflict(f"request id {request_id} was already used for another erasure; nothing was erased")
    return records.receipt_from(props)


async def _record_receipt(tx: AsyncTransaction, **receipt: Any) -> ErasureReceipt:
    """Record the receipt of an erasure (cypher/record_erasure.cypher); when a concurrent erasure took its request id
    meanwhile, roll back and try again (Interfered): the next try finds that receipt."""
    rows = await fetch(tx, "record_erasure", **receipt)
    if not rows[0]["created"]:
        raise Interfered()
    return records.receipt_from(rows[0]["receipt"])


class ErasureRepository(WriteRepository):
    async def erasure_plan(self, profile_ids: Sequence[str]) -> ErasurePlan:
        async def work(tx: AsyncTransaction) -> ErasurePlan:
            return await _plan_in(tx, profile_ids)

        return await self._read(work)

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
        # The change log gets one event (`change`; by default CUSTOMER_ERASED or PROFILE_ERASED) naming the profiles
        # erased, with the customer they belonged to (customer_before), by requested_by, request_id and reason; a
        # repeated request writes none.
        # The plan is made inside the erasing transaction, under locks: the profiles of the customer, then every
        # identity they hold, are write-locked, and the customer is read again until no new profile joined it
        # meanwhile. Once they are locked, nobody can link a profile to them before this transaction ends, so what
        # it deletes is the whole customer as of its commit, and the identities it deletes have no other holder.
        async def work(tx: AsyncTransaction) -> ErasureReceipt | None:
            found = await fetch(tx, "find_erasure_receipt", request_id=request_id)
            if found:
                return _repeated(found[0]["receipt"], request_id, profile_id)
            if whole_customer:
                locked = await self._lock_customers(tx, [profile_id], max_nodes)
            else:
                locked = {r["profile_id"] for r in await fetch(tx, "lock_profiles", profile_ids=[profile_id])}
                await fetch(tx, "lock_held_identities", profile_ids=sorted(locked))
            if profile_id not in locked:
                # Gone: erased by a transaction this one waited for (maybe an earlier try of this same request).
                again = await fetch(tx, "find_erasure_receipt", request_id=request_id)
                return _repeated(again[0]["receipt"], request_id, profile_id) if again else None
            plan = await _plan_in(tx, sorted(locked))
            before = await self._customer_before(tx, profile_id, locked if whole_customer else None, max_nodes)
            hashes = suppression_hashes(plan)
            counts = (
                await fetch(
                    tx, "erase_profiles", profile_ids=list(plan.profile_ids), identities=key_params(plan.identities)
                )
            )[0]
            suppressed = sorted(set(hashes.values) | set(hashes.records))
            await fetch(tx, "add_suppressions", hashes=suppressed, now=now, request_id=request_id)
            # The identities other profiles keep lost holders (locked above with the customer): the contested rule.
            contested = await contest(
                tx, identities=plan.kept_identities, limits=contest_limits, fanout=max_profiles_per_identity, now=now
            )
            receipt = await _record_receipt(
                tx,
                request_id=request_id,
                requested_by=requested_by,
                reason=reason,
                now=now,
                subject=profile_id,
                profile_ids=list(plan.profile_ids),
                profiles_deleted=counts["profiles_deleted"],
                identities_deleted=counts["identities_deleted"],
                suppressed=len(set(hashes.values)),
                records_suppressed=len(set(hashes.records)),
            )
            kind = change or (ChangeType.CUSTOMER_ERASED if whole_customer else ChangeType.PROFILE_ERASED)
            changes = [Change(kind, plan.profile_ids, customer_before=before), *saturations(contested)]
            await record_changes(tx, changes, Audit(requested_by, request_id, reason), now)  # last
            return receipt

        receipt, _ = await self._write(work, timeout_s=max(self._timeout_s, 60.0))
        return receipt

    async def _customer_before(
        self, tx: AsyncTransaction, profile_id: str, customer: set[str] | None, max_nodes: int
    ) -> str | None:
        """The customer id of the profile before the erasure (`customer`: its whole customer, already read under
        locks); None when its customer is larger than max_nodes nodes."""
        if customer is None:
            component = await self._component_in(tx, profile_id, max_nodes)
            if component is None or component.truncated:
                return None
            customer = set(component.profile_ids)
        rows = await fetch(tx, "oldest_profile", profile_ids=sorted(customer))
        return str(rows[0]["profile_id"]) if rows else None

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
        """Put the keyed hashes of values nobody holds on the suppression list, with a receipt (nothing deleted), in
        one transaction; None, writing nothing, when one of the values is held by a profile after all. Each value's
        identity node is merged first (a placeholder, deleted again before commit): a writer creating it meanwhile
        commits first (and the value is found held) or waits for this transaction (and then finds it suppressed)."""

        async def work(tx: AsyncTransaction) -> ErasureReceipt | None:
            found = await fetch(tx, "claim_absent_identities", identities=key_params(sorted(set(identities))))
            if any(r["held"] for r in found):
                return None
            await fetch(tx, "delete_identities", identities=key_params(sorted(set(identities))))
            await fetch(tx, "add_suppressions", hashes=sorted(set(hashes)), now=now, request_id=request_id)
            receipt = await _record_receipt(
                tx,
                request_id=request_id,
                requested_by=requested_by,
                reason=reason,
                now=now,
                subject=None,
                profile_ids=[],
                profiles_deleted=0,
                identities_deleted=0,
                suppressed=len(set(hashes)),
                records_suppressed=0,
            )
            # An opt-out of someone idgraph holds nothing of: CUSTOMER_ERASED naming no profile (docs/changes.md).
            audit = Audit(requested_by, request_id, reason)
            await record_changes(tx, [Change(ChangeType.CUSTOMER_ERASED, ())], audit, now)
            return receipt

        receipt, _ = await self._write(work)
        return receipt

    async def erasure_receipt(self, request_id: str) -> ErasureReceipt | None:
        rows = await self._query("find_erasure_receipt", request_id=request_id)
        return records.receipt_from(rows[0]["receipt"]) if rows else None
