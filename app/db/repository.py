"""Neo4jRepository: the Repository port (app/services/ports.py) on Neo4j. Its parts by noun: base (transactions,
locks), reads, writes, erasure, changes; every statement is a cypher/ file."""

from __future__ import annotations

from neo4j import AsyncDriver

from app.config import Settings
from app.db.base import MAX_LINKS_PER_PROFILE
from app.db.changes import ChangeLogRepository
from app.db.erasure import ErasureRepository
from app.db.records import token_key
from app.domain.strategy import Strategy
from app.erasure_key import ErasureKey

__all__ = ["MAX_LINKS_PER_PROFILE", "Neo4jRepository"]


class Neo4jRepository(ErasureRepository, ChangeLogRepository):
    """Every use case's storage, on one driver and database (the change log's reads included)."""

    @classmethod
    def configured(
        cls, driver: AsyncDriver, settings: Settings, strategy: Strategy, erasure_key: ErasureKey
    ) -> Neo4jRepository:
        """The repository of a serving or command process: the settings' database and time budget, consistency
        tokens signed with a key derived from the erasure key, the key checked by every write, and the strategy's
        bound on the links read per profile."""
        return cls(
            driver,
            token_key=token_key(erasure_key.key),
            database=settings.neo4j_database,
            timeout_s=settings.query_timeout_s,
            erasure_key=erasure_key,
            max_links_per_profile=strategy.protections.max_identities_per_profile,
        )
