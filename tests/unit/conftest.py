"""Fixtures of the use cases' unit tests: a service on the in-memory repository, with the test clock."""

from __future__ import annotations

import pytest

from app.services.identity import IdentityService
from tests.clock import Clock
from tests.unit.fake_repository import InMemoryRepository
from tests.unit.use_case_support import make_service


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo() -> InMemoryRepository:
    return InMemoryRepository()


@pytest.fixture
def service(repo: InMemoryRepository, clock: Clock) -> IdentityService:
    return make_service(repo, clock)
