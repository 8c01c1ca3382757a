"""What every use case of idgraph stands on: the repository port, the strategy, the erasure key and the clock;
and the helpers the use cases share. Never Neo4j or HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from app.domain.model import (
    Customer,
    IdentityKey,
    Rejection,
)
from app.domain.strategy import Strategy
from app.domain.suppression import Secret
from app.services.ports import (
    ProfileComponent,
    Repository,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServiceBase:
    """The state every use case reads; the use cases add their methods by noun (resolve, writes, erasure)."""

    def __init__(
        self,
        repo: Repository,
        strategy: Strategy,
        erasure_key: Secret,
        *,
        max_component_nodes: int = 2000,
        max_candidates: int = 5,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repo = repo
        self.strategy = strategy
        self._erasure_key = erasure_key
        self._max_nodes = max_component_nodes
        self._max_candidates = max_candidates
        self._clock = clock


def group_components(
    found: Sequence[tuple[str | IdentityKey, ProfileComponent]],
) -> list[tuple[list[IdentityKey], ProfileComponent]]:
    """Seeds whose components share a profile are one customer; keeps first-seen order."""
    groups: list[tuple[list[IdentityKey], set[str], ProfileComponent]] = []
    for seed, component in found:
        ids = set(component.profile_ids)
        if not ids:
            continue
        for seeds, members, _ in groups:
            if members & ids:
                if isinstance(seed, IdentityKey):
                    seeds.append(seed)
                members |= ids
                break
        else:
            groups.append(([seed] if isinstance(seed, IdentityKey) else [], ids, component))
    return [(seeds, component) for seeds, _, component in groups]


def distinct_customers(customers: Iterable[Customer | None]) -> list[Customer]:
    seen: dict[str, Customer] = {}
    for c in customers:
        if c is not None:
            seen.setdefault(c.id, c)
    return list(seen.values())


def reasons(rejected: Sequence[Rejection]) -> str:
    return ", ".join(f"{r.key}: {r.reason.value}" for r in rejected) or "none given"
