"""What the unit tests of the use cases share: a test clock and a service on the in-memory repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.strategy import Strategy, default_strategy
from app.services.identity import IdentityService
from tests.unit.fake_repository import InMemoryRepository

ERASURE_KEY = b"k" * 32

PHONE = "phone_number"
EMAIL = "email_address"
ACCOUNT = "account_id"


class Clock:
    """A test clock: one second passes per reading, so 'oldest profile' and 'within 7 days' are deterministic."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def make_service(repo: InMemoryRepository, clock: Clock, strategy: Strategy | None = None) -> IdentityService:
    return IdentityService(repo, strategy or default_strategy(), ERASURE_KEY, clock=clock)
