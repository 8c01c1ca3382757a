"""Keyed hashes of erased data: what the suppression list stores instead of the values themselves.

Three kinds share the list, each with a message no other kind can produce (identity keys are plain identifiers,
so they never hold the separator \\x1e):
- an identity value: "<key>\\x1f<normalized value>";
- a source record: "record\\x1e<source>\\x1f<source_id>", so a lagging sync of the erased record is refused;
- a profile id: "profile\\x1e<id>", so a link or merge naming an erased profile says SUPPRESSED, not NOT_FOUND.

After `idgraph key rotate` the list holds HMAC(new key, stored hash) of every entry: a hash is made with the chain of
keys the database has used, oldest first (a KeyChain: the retired keys come from the database, wrapped under the
current key, app/erasure_key.py). With one key, the chain is the plain HMAC above.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Protocol

from app.domain.model import IdentityKey

# What the erasure key's fingerprint is made of: HMAC-SHA256(key, label). The database stores it, never the key.
FINGERPRINT_LABEL = b"idgraph erasure key fingerprint v1"


class KeyChain(Protocol):
    def chain(self) -> Sequence[bytes]:
        """The keys a suppression hash is made with, oldest first, the current one last."""
        ...


Secret = bytes | KeyChain


def key_fingerprint(key: bytes) -> str:
    """What the database stores to recognise a key without being able to hash values with it."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def rekeyed(key: bytes, stored: str) -> str:
    """A suppression hash carried over to the next key by a rotation: HMAC(key, stored hash)."""
    return hmac.new(key, stored.encode(), hashlib.sha256).hexdigest()


def _keyed(secret: Secret, message: str) -> str:
    keys = (secret,) if isinstance(secret, bytes) else tuple(secret.chain())
    digest = hmac.digest(keys[0], message.encode(), "sha256").hex()  # hmac.new(...).hexdigest(), in one C call
    for key in keys[1:]:
        digest = rekeyed(key, digest)
    return digest


def suppression_hash(secret: Secret, identity: IdentityKey) -> str:
    """HMAC-SHA256 of the normalized (key, value); the secret lives outside the database."""
    return _keyed(secret, f"{identity.key}\x1f{identity.value}")


def record_hash(secret: Secret, source: str, source_id: str) -> str:
    """HMAC-SHA256 of a source record's (source, source_id), as upserts name it (source_id trimmed)."""
    return _keyed(secret, f"record\x1e{source}\x1f{source_id.strip()}")


def profile_hash(secret: Secret, profile_id: str) -> str:
    """HMAC-SHA256 of an erased profile's id."""
    return _keyed(secret, f"profile\x1e{profile_id}")
