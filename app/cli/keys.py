"""`idgraph key rotate`: replace the erasure key, re-keying the suppression list in place; `idgraph key adopt`:
record the key of a suppression list made before idgraph recorded key fingerprints.

The suppression list holds keyed hashes, never the values, so no hash can be recomputed from its value under a new
key. A rotation therefore wraps each hash instead: h' = HMAC(new key, h), and keeps the retired keys in the database,
encrypted under the new key (app/erasure_key.py). A process with the new key unwraps them and hashes a value with the
chain of keys, oldest first, which gives h' again; the old key alone no longer matches any entry, and cannot unwrap the
chain. Steps, each committed before the next:
1. mark the key node "rotating" (from the old key's fingerprint only): every write, in every process, is refused;
2. wait until every transaction that began before the mark has ended (SHOW TRANSACTIONS): a writer that checked the
   key before it could otherwise look up an old hash after it was re-keyed;
3. re-key the list in pages, each page one transaction, each entry marked with the new key's fingerprint;
4. record the new key's fingerprint and the wrapped retired keys, once no entry is left: writes resume, with the new
   key only. An interrupted rotation leaves the node "rotating": run the same command again to finish it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings, read_key_file
from app.erasure_key import ErasureKey, unwrap_keys, wrap_keys
from app.errors import DatabaseUnavailable, ErasureKeyMismatch, InvalidInput

if TYPE_CHECKING:
    from app.db.keystore import KeyStore


@dataclass(frozen=True)
class Rotation:
    rekeyed: int
    generation: int
    resumed: bool


async def rotate(
    store: KeyStore,
    old_key: bytes,
    new_key: bytes,
    *,
    page_size: int = 1000,
    drain_timeout_s: float = 120.0,
    say: Callable[[str], None] = lambda _: None,
) -> Rotation:
    """Rotate the database's erasure key from `old_key` to `new_key` (see the module docstring)."""
    old, new = ErasureKey(old_key), ErasureKey(new_key)
    if old.fingerprint == new.fingerprint:
        raise InvalidInput("--new-key-file holds the same key as --old-key-file")
    stored = await store.read()
    if stored is None:  # nothing recorded yet: the old key is the database's, as for the first writer
        await store.check(old, record=True)
        stored = await store.read()
    if stored is None or stored.fingerprint != old.fingerprint:
        raise ErasureKeyMismatch(
            "--old-key-file: this key does not match the database's (key fingerprint mismatch); nothing was changed"
        )
    resumed = stored.state == "rotating" and stored.rotating_to == new.fingerprint
    if stored.state != "active" and not resumed:
        raise ErasureKeyMismatch("another rotation, to another key, is under way; finish it first (same command)")
    retired = unwrap_keys(old_key, stored.wrapped) if stored.wrapped else ()
    if new_key in retired:
        raise InvalidInput("--new-key-file: this key was retired by an earlier rotation; choose a new one")
    if not await store.begin_rotation(old.fingerprint, new.fingerprint):
        raise ErasureKeyMismatch("the database's erasure key changed meanwhile; nothing was changed")
    say("writes are refused from now until the rotation ends; waiting for transactions that began before")
    if not await store.wait_for_older_transactions(drain_timeout_s):
        if await store.abort_rotation(new.fingerprint):
            raise DatabaseUnavailable(
                f"transactions that began before the rotation were still running after {drain_timeout_s:g}s; the "
                "rotation was called off and nothing was re-keyed (the old key stays in force)"
            )
        raise DatabaseUnavailable(
            f"transactions that began before the rotation were still running after {drain_timeout_s:g}s; writes stay "
            "refused: run the same command again to finish the rotation"
        )
    rekeyed, after = 0, ""
    while True:
        count, cursor = await store.rekey_page(new_key, new.fingerprint, after, page_size)
        if cursor is None:
            break
        rekeyed, after = rekeyed + count, cursor
        say(f"re-keyed {rekeyed:,} suppression entries")
    generation = await store.finish_rotation(new.fingerprint, wrap_keys(new_key, (*retired, old_key)))
    if generation is None:
        raise DatabaseUnavailable("entries of the suppression list are left to re-key; run the same command again")
    return Rotation(rekeyed, generation, resumed)


def _rotate(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.driver import create_driver
    from app.db.keystore import KeyStore

    old_key = read_key_file(Path(args.old_key_file))
    new_key = read_key_file(Path(args.new_key_file))

    async def run() -> Rotation:
        driver = create_driver(settings)
        try:
            store = KeyStore(driver, database=settings.neo4j_database, timeout_s=max(settings.query_timeout_s, 60.0))
            return await rotate(store, old_key, new_key, say=lambda line: print(line, file=sys.stderr))
        finally:
            await driver.close()

    done = asyncio.run(run())
    print(
        f"erasure key rotated{' (resumed)' if done.resumed else ''}: {done.rekeyed:,} suppression entries re-keyed "
        f"(key generation {done.generation}). Processes with the old key are now refused: restart each with the "
        "new key (IDGRAPH_ERASURE_KEY, or its erasure.key file)."
    )
    return 0


def _adopt(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.driver import create_driver
    from app.db.keystore import KeyStore

    key = ErasureKey(read_key_file(Path(args.key_file)))

    async def run() -> bool:
        driver = create_driver(settings)
        try:
            store = KeyStore(driver, database=settings.neo4j_database, timeout_s=max(settings.query_timeout_s, 60.0))
            return await store.adopt(key)
        finally:
            await driver.close()

    if asyncio.run(run()):
        print("erasure key recorded: processes with this key may write; processes with another key are refused")
    else:
        print("the database already has this erasure key recorded; nothing to do")
    return 0


def add_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `idgraph key rotate` and `idgraph key adopt` on the `idgraph` parser's subparsers."""
    key = commands.add_parser(
        "key",
        help="manage the erasure key",
        description="Manage the erasure key (the secret of the suppression list's keyed hashes).",
    )
    actions = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate_parser = actions.add_parser(
        "rotate",
        help="replace the erasure key, re-keying the suppression list in place",
        description="Check that --old-key-file holds the database's key, then re-key the suppression list under "
        "the key of --new-key-file (each key at least 32 characters). Writes are refused, in every process, from "
        "the start of the rotation to its end; afterwards processes with the old key are refused until restarted "
        "with the new one. An interrupted rotation is finished by running the same command again. Exit status 2 "
        "when a key does not match or the rotation could not finish.",
    )
    rotate_parser.add_argument("--old-key-file", required=True, metavar="PATH", help="the key in force now")
    rotate_parser.add_argument("--new-key-file", required=True, metavar="PATH", help="the key to rotate to")
    rotate_parser.set_defaults(run=_rotate)
    adopt_parser = actions.add_parser(
        "adopt",
        help="record the key of a suppression list that predates key fingerprints",
        description="A database whose suppression list was made before idgraph recorded its erasure key's "
        "fingerprint refuses every write (and /readyz answers 503) until the key that made the list is recorded: "
        "the first writer must not record just any key, or the list would silently stop matching. Run this once "
        "with that key (the erasure.key file or IDGRAPH_ERASURE_KEY of the processes that wrote the list). Refused "
        "(exit 2) when the database already records another key.",
    )
    adopt_parser.add_argument("--key-file", required=True, metavar="PATH", help="the key that made the list")
    adopt_parser.set_defaults(run=_adopt)
