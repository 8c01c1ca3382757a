from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.db.driver import AsyncDriver
from app.db.records import token_key
from app.db.repository import Neo4jRepository
from app.domain.strategy import Strategy, default_strategy
from app.services.identity import IdentityService
from tests.erasure_key import ERASURE_KEY


class Clock:
    """A test clock: one second passes per reading, so 'oldest profile' and 'within 7 days' are deterministic."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


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
