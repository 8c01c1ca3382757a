"""API tokens: a JSON file of {"name", "token_sha256", "scopes"}; only hashes of tokens are ever stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import InvalidInput

# Where the HTTP guard leaves the caller and the request id in the ASGI scope for the endpoints to read.
PRINCIPAL_KEY = "idgraph.principal"
REQUEST_ID_KEY = "idgraph.request_id"

READ = "identity:read"
WRITE = "identity:write"
ERASE = "identity:erase"
SCOPES = (READ, WRITE, ERASE)


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

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        """Read the tokens file; a missing file means no token is valid. Bad content is refused with its place."""
        if not path.exists():
            return cls(())
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
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
