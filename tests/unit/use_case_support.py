"""What the unit tests of the use cases share: a test clock and a service on the in-memory repository."""

from __future__ import annotations

from dataclasses import replace

from app.domain.strategy import Strategy, default_strategy
from app.services.identity import IdentityService
from tests.clock import Clock
from tests.unit.fake_repository import InMemoryRepository

ERASURE_KEY = b"k" * 32

PHONE = "phone_number"
EMAIL = "email_address"
ACCOUNT = "account_id"


def uncontested(strategy: Strategy | None = None) -> Strategy:
    """The strategy with [protections] contested_identities = false: a shared value links account holders as it
    did before the contested rule (and their account ids show as a conflict)."""
    strategy = strategy or default_strategy()
    return replace(strategy, protections=replace(strategy.protections, contested_identities=False))


def make_service(repo: InMemoryRepository, clock: Clock, strategy: Strategy | None = None) -> IdentityService:
    return IdentityService(repo, strategy or default_strategy(), ERASURE_KEY, clock=clock)
