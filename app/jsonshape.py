"""The JSON shape of each domain object, one per object, for every JSON idgraph writes outside GraphQL: the REST
API, the CRM webhook and the command line (resolve, erase, export, purge --status).

Keys are snake_case. Times are RFC 3339 in UTC with a "Z" and always six fractional digits
(`2026-12-05T17:00:00.000000Z`): one width, so that they sort as text, and no precision lost. An identity as stored
(`identity_json`) always carries its state: `linking` (it joins profiles into one customer), and why not when it
does not (`blocked`, `saturated`, `contested`), with `profile_count`.

Imports only app.domain: the REST layer and the command line both use it, neither owns it. A change event
(`change_json`) has one shape on the REST feed, `idgraph changes` and the outbound change webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.domain.changes import ChangeEvent
from app.domain.model import (
    Customer,
    ErasurePlan,
    ErasureReceipt,
    ExportRow,
    IdentityKey,
    Profile,
    Rejection,
    Resolution,
    StoredIdentity,
    UpsertResult,
)

Json = dict[str, Any]


def rfc3339(value: datetime) -> str:
    """`2026-12-05T17:00:00.000000Z`: the moment in UTC, microseconds always written."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


def key_json(identity: IdentityKey) -> Json:
    """A key and its normalized value, without what the graph knows of it."""
    return {"key": identity.key, "value": identity.value}


def identity_json(stored: StoredIdentity) -> Json:
    return {
        "key": stored.key,
        "value": stored.value,
        "linking": stored.linking,
        "blocked": stored.blocked,
        "saturated": stored.saturated,
        "contested": stored.contested,
        "profile_count": stored.profile_count,
    }


def profile_json(profile: Profile, customer: Customer | None = None) -> Json:
    """With its customer, each identity with its state (identity_json); without (a caller that may not read
    customers), keys and values only: how many profiles hold a value tells who else holds it."""
    stored = {i.identity: i for i in customer.identities} if customer is not None else {}
    return {
        "id": profile.id,
        "source": profile.source,
        "source_id": profile.source_id,
        "identities": [identity_json(stored[k]) if k in stored else key_json(k) for k in profile.identities],
        "attributes": dict(profile.attributes),
        "created_at": rfc3339(profile.created_at),
        "updated_at": rfc3339(profile.updated_at),
    }


def customer_json(customer: Customer) -> Json:
    return {
        "id": customer.id,
        "profiles": [profile_json(p, customer) for p in customer.profiles],
        "identities": [identity_json(i) for i in customer.identities],
        "attributes": {name: av.value for name, av in customer.attributes.items()},
        "attribute_provenance": [
            {
                "name": av.name,
                "value": av.value,
                "profile_id": av.profile_id,
                "source": av.source,
                "updated_at": rfc3339(av.updated_at),
            }
            for av in customer.attributes.values()
        ],
        "skills": list(customer.skills),
        "conflicts": [{"key": c.key, "values": list(c.values), "limit": c.limit} for c in customer.conflicts],
        "merges": [
            {
                "source_profile_id": m.source_profile_id,
                "target_profile_id": m.target_profile_id,
                "at": rfc3339(m.at),
                "by": m.by,
                "reason": m.reason,
            }
            for m in customer.merges
        ],
        "truncated": customer.truncated,
    }


def rejection_json(rejection: Rejection) -> Json:
    return {"key": rejection.key, "reason": rejection.reason.value, "detail": rejection.detail}


def resolution_json(resolution: Resolution) -> Json:
    return {
        "status": resolution.status.value,
        "customer": customer_json(resolution.customer) if resolution.customer is not None else None,
        "candidates": [customer_json(c) for c in resolution.candidates],
        "matched_on": [key_json(k) for k in resolution.matched_on],
        "assurance": resolution.assurance.value,
        "rejected": [rejection_json(r) for r in resolution.rejected],
        "ignored": [{"key": i.key, "value": i.value, "reason": i.reason.value} for i in resolution.ignored],
    }


def upsert_json(result: UpsertResult, *, with_customer: bool = True) -> Json:
    """Without the customer (a caller that may not read customers): no "customer", and the profile's identities
    without their state."""
    answer: Json = {
        "profile": profile_json(result.profile, result.customer if with_customer else None),
        "created": result.created,
        "rejected": [rejection_json(r) for r in result.rejected],
        "consistency_token": result.consistency_token,
    }
    if with_customer:
        answer["customer"] = customer_json(result.customer)
    return answer


def receipt_json(receipt: ErasureReceipt) -> Json:
    return {
        "request_id": receipt.request_id,
        "status": receipt.status,
        "requested_by": receipt.requested_by,
        "reason": receipt.reason,
        "at": rfc3339(receipt.at),
        "profiles_deleted": receipt.profiles_deleted,
        "identities_deleted": receipt.identities_deleted,
        "suppressed": receipt.suppressed,
    }


def plan_json(plan: ErasurePlan) -> Json:
    return {
        "profile_ids": list(plan.profile_ids),
        "identities_deleted": [key_json(k) for k in plan.identities],
        "identities_kept": [key_json(k) for k in plan.kept_identities],
    }


def export_json(row: ExportRow) -> Json:
    """One line of `idgraph export`: exactly these four keys (a documented contract)."""
    return {
        "profile_id": row.profile_id,
        "source": row.source,
        "source_id": row.source_id,
        "customer_id": row.customer_id,
    }


def change_json(event: ChangeEvent) -> Json:
    """One event of the change feed: ids only, never an identity or attribute value. The cursor is a string (compare
    cursors as integers to deduplicate)."""
    return {
        "cursor": event.cursor,
        "type": str(event.type),
        "profile_ids": list(event.profile_ids),
        "customer_before": event.customer_before,
        "customer_after": event.customer_after,
        "actor": event.actor,
        "request_id": event.request_id,
        "reason": event.reason,
        "at": rfc3339(event.at),
    }
