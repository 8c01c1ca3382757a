from __future__ import annotations

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.domain.strategy import Strategy, default_strategy
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.erasure_key import ERASURE_KEY


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo(driver: AsyncDriver, settings: Settings) -> Neo4jRepository:
    return Neo4jRepository(
        driver, token_key=token_key(ERASURE_KEY.encode()), database=settings.neo4j_database, timeout_s=30.0
    )


def make_service(repo: Neo4jRepository, clock: Clock, strategy: Strategy | None = None) -> IdentityService:
    return IdentityService(repo, strategy or default_strategy(), ERASURE_KEY.encode(), clock=clock)


@pytest.fixture
def service(repo: Neo4jRepository, clock: Clock) -> IdentityService:
    return make_service(repo, clock)
