"""The signature of idgraph's webhooks, one scheme both ways: the CRM opt-out webhook checks it on what it receives
(app/rest/webhook.py), the change feed's delivery puts it on what it sends (app/bulk/delivery.py).

    X-Idgraph-Timestamp: <unix seconds>
    X-Idgraph-Signature: sha256=<hex of HMAC-SHA256(secret, f"{timestamp}.{raw body}")>
"""

from __future__ import annotations

import hashlib
import hmac

from app.errors import Unauthenticated

SIGNATURE_HEADER = "x-idgraph-signature"
TIMESTAMP_HEADER = "x-idgraph-timestamp"
TOLERANCE_S = 300  # a receiver refuses a timestamp further than this from its clock


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Idgraph-Signature value of a delivery: "sha256=" + hex HMAC-SHA256 over b"<timestamp>." + body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers that sign `body` sent at `timestamp` (unix seconds)."""
    stamp = str(timestamp)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body)}


def verify_signature(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Raise Unauthenticated unless the delivery is signed with the secret and its timestamp is fresh."""
    if not timestamp or not signature:
        raise Unauthenticated("unsigned request: X-Idgraph-Timestamp and X-Idgraph-Signature are required")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthenticated("X-Idgraph-Timestamp must be whole unix seconds")
    scheme, _, given = signature.partition("=")
    if scheme.strip().lower() != "sha256" or not given:
        raise Unauthenticated("X-Idgraph-Signature must read sha256=<hex>")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), f"sha256={given.strip().lower()}".encode()):
        raise Unauthenticated("bad signature")
    if abs(now - int(timestamp)) > tolerance_s:
        raise Unauthenticated(f"X-Idgraph-Timestamp is more than {tolerance_s:g} seconds away from the server's clock")
