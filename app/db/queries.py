"""Cypher statements, loaded from the repository's cypher/ folder by file stem."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import LiteralString

from app.config import REPO_ROOT

CYPHER_DIR = REPO_ROOT / "cypher"
SCHEMA_DIR = CYPHER_DIR / "schema"

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.cypher$")


@functools.cache
def query(name: str) -> LiteralString:
    """The statement of cypher/<name>.cypher, without its comment lines (the text is sent with every call).

    Treating it as a LiteralString is safe: the text comes from files shipped with the code, never from a
    request; every value a request carries is passed as a $parameter.
    """
    path = CYPHER_DIR / f"{name}.cypher"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("//")]
    text: LiteralString = "\n".join(lines).strip()  # type: ignore[assignment,unused-ignore]
    return text


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[LiteralString, ...]
    checksum: str


def migrations(directory: Path = SCHEMA_DIR) -> list[Migration]:
    """The numbered schema files in order, each split into its statements."""

    found: list[Migration] = []
    for path in sorted(directory.glob("*.cypher")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"schema file {path.name} is not named NNN_name.cypher")
        text = path.read_text(encoding="utf-8")
        statements: tuple[LiteralString, ...] = tuple(_split_statements(text))  # type: ignore[arg-type,unused-ignore]
        found.append(Migration(int(match[1]), match[2], statements, hashlib.sha256(text.encode()).hexdigest()[:16]))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two schema files share a version number")
    return found


def _split_statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("//")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
