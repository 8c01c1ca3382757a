"""Mapping of Neo4j records onto domain objects; the only place that reads driver value types."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from neo4j import Bookmarks
from neo4j.time import DateTime

from app.domain.model import (
    ErasureReceipt,
    IdentityKey,
    IdentityLink,
    MergeEdge,
    Profile,
    Scalar,
    StoredIdentity,
)

ATTRIBUTE_PREFIX = "attr."
ATTRIBUTE_TIME_PREFIX = "attr_at."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(value: Any) -> datetime:
    """A stored time: microseconds since the epoch (what the hot read statements return, see
    cypher/resolve_snapshot.cypher), a driver DateTime, or a datetime; the epoch for a missing one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(value, DateTime):
        native: datetime = value.to_native()
        return native if native.tzinfo else native.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return _EPOCH


def attribute_properties(attributes: Mapping[str, Scalar], now: datetime) -> dict[str, Any]:
    """Graph properties for a profile's attributes: a value and the time it was set; None removes both."""
    props, timed = attribute_changes(attributes)
    props.update({ATTRIBUTE_TIME_PREFIX + name: now for name in timed})
    return props


def attribute_changes(attributes: Mapping[str, Scalar]) -> tuple[dict[str, Any], list[str]]:
    """A profile's attributes as graph properties without their times: the values (None removes a value and its
    time), and the names whose time the statement sets to its $now (cypher/write_profiles.cypher)."""
    props: dict[str, Any] = {}
    timed: list[str] = []
    for name, value in attributes.items():
        props[ATTRIBUTE_PREFIX + name] = value
        if value is None:
            props[ATTRIBUTE_TIME_PREFIX + name] = None
        else:
            timed.append(name)
    return props, timed


def properties(value: Mapping[str, Any] | Iterable[Sequence[Any]]) -> Mapping[str, Any]:
    """A node's properties, from a map or from the [name, value] pairs the hot read statements return."""
    return value if isinstance(value, Mapping) else {str(pair[0]): pair[1] for pair in value}


def profile_from(props: Mapping[str, Any], identities: Iterable[IdentityKey] = ()) -> Profile:
    attributes: dict[str, Scalar] = {}
    times: dict[str, datetime] = {}
    for name, value in props.items():
        if name.startswith(ATTRIBUTE_PREFIX):
            attributes[name[len(ATTRIBUTE_PREFIX) :]] = value
        elif name.startswith(ATTRIBUTE_TIME_PREFIX):
            times[name[len(ATTRIBUTE_TIME_PREFIX) :]] = to_datetime(value)
    return Profile(
        id=str(props["id"]),
        source=str(props.get("source") or ""),
        source_id=props.get("source_id"),
        created_at=to_datetime(props.get("created_at")),
        updated_at=to_datetime(props.get("updated_at")),
        attributes=attributes,
        attribute_times=times,
        identities=tuple(sorted(identities)),
    )


def identity_from(row: Mapping[str, Any]) -> StoredIdentity:
    return StoredIdentity(
        key=str(row["key"]),
        value=str(row["value"]),
        rule=str(row.get("rule") or ""),
        rule_version=str(row.get("rule_version") or ""),
        blocked=bool(row.get("blocked")),
        saturated=bool(row.get("saturated")),
        profile_count=int(row.get("profile_count") or 0),
        contested_key=None if row.get("contested_key") is None else str(row["contested_key"]),
        contested_values=int(row.get("contested_values") or 0),
    )


def link_from(profile_id: str, row: Mapping[str, Any]) -> IdentityLink:
    return IdentityLink(
        profile_id=profile_id,
        key=str(row["key"]),
        value=str(row["value"]),
        raw=str(row.get("raw") or ""),
        source=str(row.get("source") or ""),
        first_seen=to_datetime(row.get("first_seen")),
        last_seen=to_datetime(row.get("last_seen")),
        linking=bool(row.get("linking")),
    )


def merge_from(source_id: str, row: Mapping[str, Any]) -> MergeEdge:
    return MergeEdge(
        source_profile_id=source_id,
        target_profile_id=str(row.get("target") or row.get("to") or ""),
        at=to_datetime(row.get("at")),
        by=str(row.get("by") or ""),
        reason=str(row.get("reason") or ""),
    )


def receipt_from(props: Mapping[str, Any]) -> ErasureReceipt:
    return ErasureReceipt(
        request_id=str(props["request_id"]),
        status=str(props.get("status") or ""),
        requested_by=str(props.get("requested_by") or ""),
        reason=str(props.get("reason") or ""),
        at=to_datetime(props.get("at")),
        profiles_deleted=int(props.get("profiles_deleted") or 0),
        identities_deleted=int(props.get("identities_deleted") or 0),
        suppressed=int(props.get("suppressed") or 0),
        records_suppressed=int(props.get("records_suppressed") or 0),
    )


# What the consistency-token key is derived from the erasure key for: a fixed label, so the two keys differ.
TOKEN_KEY_LABEL = b"idgraph consistency token v1"


def token_key(erasure_key: bytes) -> bytes:
    """The key that signs consistency tokens, shared by every replica that shares the erasure key."""
    return hmac.new(erasure_key, TOKEN_KEY_LABEL, hashlib.sha256).digest()


def token_from(bookmarks: Bookmarks, key: bytes) -> str:
    """A consistency token: the transaction's bookmarks, opaque to clients, signed with the service's token key
    (HMAC-SHA256): `<payload>.<signature>`, both base64url without padding."""
    payload = _b64(json.dumps(sorted(bookmarks.raw_values)).encode())
    return f"{payload}.{_b64(_signature(key, payload))}"


def bookmarks_from(token: str | None, key: bytes) -> Bookmarks | None:
    """Bookmarks of a consistency token; None for no token. Raises ValueError for a token this service did not issue:
    a made-up bookmark would make the read wait for a transaction that never comes."""
    if not token:
        return None
    payload, dot, signature = token.partition(".")
    if not dot or not hmac.compare_digest(_unb64(signature), _signature(key, payload)):
        raise ValueError("not a consistency token")
    values = json.loads(_unb64(payload))
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("not a consistency token")
    return Bookmarks.from_raw_values(values)


def _signature(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())
