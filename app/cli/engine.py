"""What the data commands run on: the use cases on the configured database, with the erasure key checked, and
the small helpers of their output and arguments."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.config import Settings
from app.erasure_key import ErasureKey
from app.errors import DatabaseUnavailable, ErasureKeyMismatch, Timeout

if TYPE_CHECKING:
    from app.bulk.mappings import FieldMapping
    from app.db.maintenance import MaintenanceRepository
    from app.services.identity import IdentityService


KeyCheck = Literal["none", "read", "write"]


@contextlib.asynccontextmanager
async def engine(
    settings: Settings, key: KeyCheck = "none"
) -> AsyncIterator[tuple[IdentityService, MaintenanceRepository]]:
    """The use cases on the configured database; the driver is closed on the way out. `key`: "write" for a command
    that writes (its erasure key is checked up front, and recorded on a database without one: a mismatch stops it
    before it writes anything, and every write transaction checks again), "read" for one that reads suppression
    hashes, "none" for one that does neither."""
    from app.db.driver import create_driver
    from app.db.keystore import KeyStore
    from app.db.maintenance import MaintenanceRepository
    from app.db.repository import Neo4jRepository
    from app.services.identity import IdentityService

    strategy = settings.strategy()
    driver = create_driver(settings)
    try:
        erasure_key = settings.erasure_key()
        checked = ErasureKey(erasure_key)
        if key != "none":
            try:
                await KeyStore(driver, database=settings.neo4j_database).check(checked, record=key == "write")
            except ErasureKeyMismatch:
                raise
            except (DatabaseUnavailable, Timeout):
                pass  # unchecked, the key hashes nothing: the command meets the outage and reports it its own way
        repo = Neo4jRepository.configured(driver, settings, strategy, checked)
        service = IdentityService(repo, strategy, checked, max_component_nodes=settings.max_component_nodes)
        maintenance = MaintenanceRepository(
            driver,
            database=settings.neo4j_database,
            timeout_s=max(settings.query_timeout_s, 60.0),
            erasure_key=checked,
        )
        yield service, maintenance
    finally:
        await driver.close()


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def bulk_inputs(args: argparse.Namespace, settings: Settings) -> tuple[list[Path], FieldMapping | None, Path]:
    """The files, field mapping and rejects file of `ingest` and `import`, checked before anything is read."""
    from app.bulk.ingest import check_inputs, check_mapping, default_rejects
    from app.bulk.mappings import load_mapping

    paths = [Path(f) for f in args.files]
    mapping = load_mapping(args.mapping) if args.mapping else None
    rejects = Path(args.rejects) if args.rejects else default_rejects(paths[0])
    check_inputs(paths, mapping, rejects)
    if mapping is not None:
        check_mapping(mapping, settings.strategy())
    return paths, mapping, rejects
