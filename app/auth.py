"""API tokens: a JSON file of {"name", "token_sha256", "scopes"}; only hashes of tokens are ever stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import InvalidInput

logger = logging.getLogger(__name__)

# Where the HTTP guard leaves the caller and the request id in the ASGI scope for the endpoints to read.
PRINCIPAL_KEY = "idgraph.principal"
REQUEST_ID_KEY = "idgraph.request_id"

READ = "identity:read"
WRITE = "identity:write"
ERASE = "identity:erase"
AUDIT = "identity:audit"  # reading the change feed: who changed which customer, when
SCOPES = (READ, WRITE, ERASE, AUDIT)


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what they may do."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    name: str
    token_sha256: str
    scopes: frozenset[str]


class TokenStore:
    def __init__(self, entries: Sequence[TokenEntry]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        """Read the tokens file; a missing file means no token is valid. Bad content is refused with its place."""
        if not path.exists():
            return cls(())
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"IDGRAPH_TOKENS_FILE {path}: not readable ({exc})") from exc
        return cls.parse(path, content)

    @classmethod
    def parse(cls, path: Path, content: bytes) -> TokenStore:
        """The tokens of a tokens file's content; `path` only names the file in messages."""
        try:
            raw = json.loads(content.decode("utf-8"))
        except ValueError as exc:  # not UTF-8 (UnicodeDecodeError) or not JSON (JSONDecodeError)
            raise InvalidInput(f"IDGRAPH_TOKENS_FILE {path}: not readable JSON ({exc})") from exc
        if not isinstance(raw, list):
            raise InvalidInput(f"IDGRAPH_TOKENS_FILE {path}: expected a JSON list of tokens")
        entries = []
        for n, item in enumerate(raw):
            where = f"IDGRAPH_TOKENS_FILE {path}: entry {n}"
            if not isinstance(item, dict) or set(item) - {"name", "token_sha256", "scopes"}:
                raise InvalidInput(f"{where}: expected an object with name, token_sha256 and scopes")
            name, digest, scopes = item.get("name"), item.get("token_sha256"), item.get("scopes")
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"{where}: name must be a non-empty string")
            if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise InvalidInput(f"{where}: token_sha256 must be 64 lowercase hex digits")
            if not isinstance(scopes, list) or any(s not in SCOPES for s in scopes):
                raise InvalidInput(f"{where}: scopes must be a list of {', '.join(SCOPES)}")
            entries.append(TokenEntry(name, digest, frozenset(scopes)))
        return cls(entries)

    def verify(self, token: str) -> Principal | None:
        digest = token_hash(token)
        for entry in self._entries:
            if hmac.compare_digest(entry.token_sha256, digest):
                return Principal(entry.name, entry.scopes)
        return None


# How often a serving process looks at the tokens file again (at most; on the first request after the interval).
RELOAD_INTERVAL_S = 2.0


class TokenFile:
    """The tokens file as a serving process sees it: read at start-up (a bad file stops start-up), then read again
    on a request at most every `interval_s` seconds, so a token removed or replaced in the file is refused within
    that interval, without a restart.

    A new content that is not a valid tokens file (half-written, bad JSON, a bad entry) or a file that cannot be
    read fails closed: every token is refused, with a warning logged, until a valid file is in place. Keeping the
    last good set instead would keep serving the very token an operator was revoking with that edit. A missing
    file means no token is valid, as at start-up."""

    def __init__(
        self, path: Path, *, interval_s: float = RELOAD_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = path
        self._interval_s = interval_s
        self._clock = clock
        # A bad file at start-up stops it, with a message naming the file (InvalidInput).
        try:
            self._content = _read_bytes(path)
        except OSError as exc:
            raise InvalidInput(f"IDGRAPH_TOKENS_FILE {path}: not readable ({exc})") from exc
        self._store = TokenStore.parse(path, self._content) if self._content is not None else TokenStore(())
        self._checked_at = clock()

    def verify(self, token: str) -> Principal | None:
        self._refresh()
        return self._store.verify(token)

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked_at < self._interval_s:
            return
        self._checked_at = now
        try:
            content = _read_bytes(self._path)
        except OSError as exc:
            if self._content != _UNREADABLE:
                self._refuse_all(f"not readable ({type(exc).__name__})")
            self._content = _UNREADABLE
            return
        if content == self._content:
            return
        self._content = content
        try:
            self._store = TokenStore.parse(self._path, content) if content is not None else TokenStore(())
        except InvalidInput as exc:
            self._refuse_all(exc.message)
            return
        logger.info("tokens file %s reloaded: %d tokens", self._path, len(self._store))

    def _refuse_all(self, reason: str) -> None:
        logger.warning("tokens file %s refused; every token is refused until it is fixed: %s", self._path, reason)
        self._store = TokenStore(())


_UNREADABLE = b"\x00unreadable"  # stands for a file that exists but cannot be read; no tokens file holds a NUL


def _read_bytes(path: Path) -> bytes | None:
    """The file's content; None when there is no file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def add_token(path: Path, name: str, scopes: Sequence[str]) -> str:
    """Create a token, store its hash in the tokens file (created 0600 if missing), return the token itself."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    token = "idg_" + secrets.token_urlsafe(32)
    entries: list[object] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
    entries.append({"name": name, "token_sha256": token_hash(token), "scopes": list(scopes)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(entries, out, indent=2)
    tmp.replace(path)
    return token
