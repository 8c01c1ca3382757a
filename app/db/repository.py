"""Neo4jRepository: the Repository port (app/services/ports.py) on Neo4j. Its parts by noun: base (transactions,
locks), reads, writes, erasure; every statement is a cypher/ file."""

from __future__ import annotations

from app.db.base import MAX_LINKS_PER_PROFILE
from app.db.erasure import ErasureRepository

__all__ = ["MAX_LINKS_PER_PROFILE", "Neo4jRepository"]


class Neo4jRepository(ErasureRepository):
    """Every use case's storage, on one driver and database."""
