"""Cypher statements by file stem, from the cypher/ folder: the copy the wheel carries as package data (app/cypher,
made at build time by setup.py from the top-level cypher/, their one source), else the checkout's own."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import LiteralString

from app.config import REPO_ROOT
from app.errors import InstallationError

_CHECKOUT_DIR = REPO_ROOT / "cypher"

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.cypher$")


@functools.cache
def cypher_dir() -> Path:
    """Where the statements are: in the installed package, else in the checkout. Raises InstallationError (naming
    both places) when neither has them."""
    packaged = Path(str(resources.files("app").joinpath("cypher")))
    for candidate in (packaged, _CHECKOUT_DIR):
        if (candidate / "schema").is_dir():
            return candidate
    raise InstallationError(
        f"idgraph's Cypher statements are missing (looked in {packaged} and {_CHECKOUT_DIR}): the installation is "
        "incomplete; reinstall idgraph from a wheel built with `pip wheel .`, or run it from a checkout"
    )


@functools.cache
def query(name: str) -> LiteralString:
    """The statement of cypher/<name>.cypher, without its comment lines (the text is sent with every call).

    Treating it as a LiteralString is safe: the text comes from files shipped with the code, never from a
    request; every value a request carries is passed as a $parameter.
    """
    path = cypher_dir() / f"{name}.cypher"
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InstallationError(f"the Cypher statement {path} is missing: the installation is incomplete") from None
    lines = [line for line in source.splitlines() if not line.lstrip().startswith("//")]
    text: LiteralString = "\n".join(lines).strip()  # type: ignore[assignment,unused-ignore]
    return text


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[LiteralString, ...]
    checksum: str


def migrations(directory: Path | None = None) -> list[Migration]:
    """The numbered schema files in order, each split into its statements."""
    directory = directory if directory is not None else cypher_dir() / "schema"
    found: list[Migration] = []
    for path in sorted(directory.glob("*.cypher")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"schema file {path.name} is not named NNN_name.cypher")
        text = path.read_text(encoding="utf-8")
        statements: tuple[LiteralString, ...] = tuple(_split_statements(text))  # type: ignore[arg-type,unused-ignore]
        found.append(Migration(int(match[1]), match[2], statements, hashlib.sha256(text.encode()).hexdigest()[:16]))
    if not found:
        raise InstallationError(f"no schema migration in {directory}: the installation is incomplete")
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two schema files share a version number")
    return found


def _split_statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("//")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
