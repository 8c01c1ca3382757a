"""Keyed hashes of erased identity values: what the suppression list stores instead of the values."""

from __future__ import annotations

import hashlib
import hmac

from app.domain.model import IdentityKey


def suppression_hash(secret: bytes, identity: IdentityKey) -> str:
    """HMAC-SHA256 of the normalized (key, value); the secret lives outside the database."""
    message = f"{identity.key}\x1f{identity.value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
