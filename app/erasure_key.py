"""This process's erasure key, as checked against the fingerprint the database holds.

The database stores, on one (:ErasureKey) node, a fingerprint of the key (HMAC-SHA256 of a fixed label: it recognises
the key but cannot hash a value), its state ("active", or "rotating" while `idgraph key rotate` runs), its generation
(1 + the number of rotations) and, after a rotation, the retired keys wrapped (AES-256-GCM) under the current key. A
suppression hash is made with the whole chain of keys, oldest first (app/domain/suppression.py): so the current key
alone is enough to hash, while a retired key alone no longer matches anything the database holds.

An ErasureKey hashes only once it has been checked against the database (`accept`), since only then does it know the
retired keys; until then hashing raises ErasureKeyMismatch, as does any check that finds another key, a rotation under
way, or a database whose key changed since this process checked it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.suppression import key_fingerprint
from app.errors import ErasureKeyMismatch

# The id of the singleton (:ErasureKey) node (cypher/schema/005_erasure_key.cypher).
KEY_NODE_ID = "erasure-key"

_WRAP_LABEL = b"idgraph erasure key wrap v1"
_NONCE_BYTES = 12

MISMATCH = (
    "this process's erasure key does not match the database's (key fingerprint mismatch); "
    "set IDGRAPH_ERASURE_KEY to the key the other processes use"
)
ROTATING = (
    "the database's erasure key is being rotated (idgraph key rotate): writes are refused until it finishes; "
    "then run every process with the new key"
)
ROTATED = "the database's erasure key was rotated since this process checked it; restart it with the new key"
UNCHECKED = "the identity database is unavailable: this process could not check its erasure key against it yet; retry"
# The state stored_key gives a database whose suppression list predates key fingerprints (no key node): refused
# until `idgraph key adopt` records the key that made the list.
UNRECORDED_STATE = "unrecorded"
UNRECORDED = (
    "the database holds a suppression list but no record of the erasure key that made it (it predates key "
    "fingerprints): run `idgraph key adopt --key-file PATH` once with that key"
)
UNREADABLE = "the database's retired erasure keys cannot be unwrapped with this process's key"


@dataclass(frozen=True)
class StoredKey:
    """What the (:ErasureKey) node holds."""

    fingerprint: str
    state: str  # "active" | "rotating" | "unrecorded" (no key node, but a suppression list: see UNRECORDED)
    generation: int
    wrapped: str | None  # the retired keys, oldest first, wrapped under the current key; None before any rotation
    rotating_to: str | None  # the new key's fingerprint while a rotation runs


class ErasureKey:
    """The key of this process; hashes with the database's chain of keys once `accept` has checked it."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.fingerprint = key_fingerprint(key)
        self._retired: tuple[bytes, ...] | None = None
        self._generation: int | None = None
        self._refusal: ErasureKeyMismatch | None = None

    @property
    def checked(self) -> bool:
        return self._retired is not None

    def chain(self) -> Sequence[bytes]:
        """The keys a suppression hash is made with, oldest first; refused until the key was checked."""
        if self._retired is None:
            raise ErasureKeyMismatch(self._refusal.message if self._refusal is not None else UNCHECKED)
        return (*self._retired, self.key)

    def accept(self, stored: StoredKey | None) -> None:
        """Raise ErasureKeyMismatch unless the database's key is this one (None: it has none recorded yet, so the
        first write records this one). The first accepted check loads the retired keys; they never change after."""
        try:
            self._check(stored)
        except ErasureKeyMismatch as refusal:
            self._refusal = refusal
            raise

    def _check(self, stored: StoredKey | None) -> None:
        if stored is None:
            if self._generation is None:
                self._retired, self._generation = (), 1
            elif self._generation != 1:
                raise ErasureKeyMismatch(ROTATED)
            return
        if stored.state == UNRECORDED_STATE:
            raise ErasureKeyMismatch(UNRECORDED)
        if stored.state != "active":
            raise ErasureKeyMismatch(ROTATING)
        if not hmac.compare_digest(stored.fingerprint, self.fingerprint):
            raise ErasureKeyMismatch(MISMATCH)
        if self._generation is None:
            retired = unwrap_keys(self.key, stored.wrapped) if stored.wrapped else ()
            if len(retired) != stored.generation - 1:
                raise ErasureKeyMismatch(UNREADABLE)
            self._retired, self._generation = retired, stored.generation
        elif stored.generation != self._generation:
            raise ErasureKeyMismatch(ROTATED)

    def retired(self) -> tuple[bytes, ...]:
        """The retired keys, oldest first (after a check)."""
        return tuple(self.chain())[:-1]


def _wrapping_key(key: bytes) -> bytes:
    return hmac.new(key, _WRAP_LABEL, hashlib.sha256).digest()


def wrap_keys(key: bytes, retired: Sequence[bytes]) -> str:
    """The retired keys, encrypted and authenticated under `key` (AES-256-GCM, bound to its fingerprint)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)
    plain = json.dumps([base64.b64encode(k).decode() for k in retired]).encode()
    sealed = AESGCM(_wrapping_key(key)).encrypt(nonce, plain, key_fingerprint(key).encode())
    return base64.b64encode(nonce + sealed).decode()


def unwrap_keys(key: bytes, wrapped: str) -> tuple[bytes, ...]:
    """The retired keys `wrap_keys(key, ...)` sealed; ErasureKeyMismatch when `key` cannot open them."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = base64.b64decode(wrapped, validate=True)
        plain = AESGCM(_wrapping_key(key)).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], key_fingerprint(key).encode()
        )
        return tuple(base64.b64decode(k, validate=True) for k in json.loads(plain))
    except (InvalidTag, ValueError, TypeError) as exc:
        raise ErasureKeyMismatch(UNREADABLE) from exc
