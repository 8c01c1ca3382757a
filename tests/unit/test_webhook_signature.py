"""The CRM webhook's signature scheme: HMAC-SHA256 over "<timestamp>.<raw body>", fresh within 5 minutes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.errors import Unauthenticated
from app.signature import sign, verify_signature

SECRET = "s3cret"
BODY = b'{"event_id": "e-1", "identities": [], "reason": "opt-out"}'
NOW = 1_800_000_000.0
TS = str(int(NOW))


def test_the_signature_is_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, TS, BODY) == f"sha256={expected}"


def accepted(signature: str | None, *, body: bytes = BODY, timestamp: str = TS, now: float = NOW) -> bool:
    """Whether verify_signature lets the delivery through (True) or refuses it as Unauthenticated (False)."""
    try:
        verify_signature(SECRET, timestamp=timestamp, signature=signature, body=body, now=now)
    except Unauthenticated:
        return False
    return True


def test_a_correct_signature_within_the_window_passes_and_the_same_delivery_tampered_with_does_not() -> None:
    signature = sign(SECRET, TS, BODY)
    for now in (NOW + 299, NOW - 299, NOW):
        assert accepted(signature, now=now), f"refused {now - NOW:+g} s from its timestamp"
        assert not accepted(signature, body=BODY.replace(b"e-1", b"e-2"), now=now), "a changed body passed"
        assert not accepted(signature, timestamp=str(int(NOW) - 1), now=now), "a changed timestamp passed"
        assert not accepted(sign("other", TS, BODY), now=now), "another secret's signature passed"


def test_upper_case_hex_and_scheme_are_accepted_and_still_checked() -> None:
    upper = sign(SECRET, TS, BODY).upper()
    assert upper.startswith("SHA256=") and upper != sign(SECRET, TS, BODY)
    assert accepted(upper)
    assert not accepted(sign(SECRET, TS, BODY + b" ").upper()), "an upper-cased signature of another body passed"


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "says"),
    [
        (None, sign(SECRET, TS, BODY), BODY, NOW, "unsigned"),
        (TS, None, BODY, NOW, "unsigned"),
        (TS, "", BODY, NOW, "unsigned"),
        ("1.5e9", sign(SECRET, TS, BODY), BODY, NOW, "unix seconds"),
        ("-5", sign(SECRET, TS, BODY), BODY, NOW, "unix seconds"),
        ("\uff11\uff12\uff13", sign(SECRET, TS, BODY), BODY, NOW, "unix seconds"),  # fullwidth digits
        (TS, sign(SECRET, TS, BODY).replace("sha256", "sha1"), BODY, NOW, "sha256="),
        (TS, "sha256=", BODY, NOW, "sha256="),
        (TS, sign("other", TS, BODY), BODY, NOW, "bad signature"),
        (TS, sign(SECRET, TS, BODY), BODY + b" ", NOW, "bad signature"),
        (str(int(NOW) + 1), sign(SECRET, TS, BODY), BODY, NOW, "bad signature"),  # the timestamp is signed too
        (TS, sign(SECRET, TS, BODY), BODY, NOW + 301, "seconds away"),
        (TS, sign(SECRET, TS, BODY), BODY, NOW - 301, "seconds away"),
    ],
)
def test_anything_else_is_unauthenticated(
    timestamp: str | None, signature: str | None, body: bytes, now: float, says: str
) -> None:
    with pytest.raises(Unauthenticated, match=says):
        verify_signature(SECRET, timestamp=timestamp, signature=signature, body=body, now=now)
