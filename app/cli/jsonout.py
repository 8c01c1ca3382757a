"""Domain objects as JSON-ready dicts for the command line (snake_case, times in ISO 8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.model import Customer, ErasurePlan, ErasureReceipt, ExportRow, IdentityKey, Profile, Resolution


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _key(identity: IdentityKey) -> dict[str, str]:
    return {"key": identity.key, "value": identity.value}


def profile_json(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "source": profile.source,
        "source_id": profile.source_id,
        "created_at": _time(profile.created_at),
        "updated_at": _time(profile.updated_at),
        "identities": [_key(i) for i in profile.identities],
        "attributes": dict(profile.attributes),
    }


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "profiles": [profile_json(p) for p in customer.profiles],
        "identities": [
            {"key": i.key, "value": i.value, "linking": i.linking, "profile_count": i.profile_count}
            for i in customer.identities
        ],
        "attributes": {name: a.value for name, a in customer.attributes.items()},
        "skills": list(customer.skills),
        "conflicts": [{"key": c.key, "values": list(c.values), "limit": c.limit} for c in customer.conflicts],
        "truncated": customer.truncated,
    }


def resolution_json(resolution: Resolution) -> dict[str, Any]:
    return {
        "status": str(resolution.status),
        "customer": customer_json(resolution.customer) if resolution.customer is not None else None,
        "candidates": [customer_json(c) for c in resolution.candidates],
        "matched_on": [_key(k) for k in resolution.matched_on],
        "assurance": str(resolution.assurance),
        "rejected": [{"key": r.key, "reason": str(r.reason), "detail": r.detail} for r in resolution.rejected],
        "ignored": [{"key": i.key, "value": i.value, "reason": str(i.reason)} for i in resolution.ignored],
    }


def receipt_json(receipt: ErasureReceipt) -> dict[str, Any]:
    return {
        "request_id": receipt.request_id,
        "status": receipt.status,
        "requested_by": receipt.requested_by,
        "reason": receipt.reason,
        "at": _time(receipt.at),
        "profiles_deleted": receipt.profiles_deleted,
        "identities_deleted": receipt.identities_deleted,
        "suppressed": receipt.suppressed,
    }


def plan_json(plan: ErasurePlan) -> dict[str, Any]:
    return {
        "dry_run": True,
        "profile_ids": list(plan.profile_ids),
        "identities_deleted": [_key(k) for k in plan.identities],
        "identities_kept": [_key(k) for k in plan.kept_identities],
    }


def export_json(row: ExportRow) -> dict[str, Any]:
    return {
        "profile_id": row.profile_id,
        "source": row.source,
        "source_id": row.source_id,
        "customer_id": row.customer_id,
    }
