"""Who is this? The reading use cases: resolve, customers and profiles, explain, export. They never write."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from app.domain.assurance import assess
from app.domain.customer import build_customer
from app.domain.model import (
    Assurance,
    Customer,
    Explanation,
    ExportRow,
    IdentityKey,
    IgnoredKey,
    IgnoredReason,
    NormalizedIdentity,
    Profile,
    Rejection,
    Resolution,
    ResolutionStatus,
)
from app.domain.normalize import normalize, normalize_many
from app.domain.validation import check_id, check_search_keys
from app.errors import InvalidInput, NotFound
from app.services.base import ServiceBase, group_components, reasons
from app.services.ports import (
    Snapshot,
)

logger = logging.getLogger(__name__)


class Reads(ServiceBase):
    def normalize(self, key: str, raw: str) -> NormalizedIdentity | Rejection:
        return normalize(self.strategy, key, raw)

    async def resolve(
        self, identities: Sequence[tuple[str, str]], *, consistency: str | None = None, leader: bool = False
    ) -> Resolution:
        """Who is this? Never writes: an unknown caller leaves no trace. `leader`: read where writes go, for a
        decision that must not rest on a lagging replica (the CRM webhook's erasures)."""
        check_search_keys(len(identities))
        accepted, rejected = normalize_many(self.strategy, identities)
        if not accepted:
            raise InvalidInput("no usable identity to resolve: " + reasons(rejected))
        keys = [n.identity for n in accepted]
        snapshot = await self.repo.read_identities(
            keys, max_nodes=self._max_nodes, candidates=self._max_candidates, consistency=consistency, leader=leader
        )
        ignored: list[IgnoredKey] = []
        for s in snapshot.identities:
            if s.blocked or self.strategy.is_blocked(s.identity):
                ignored.append(IgnoredKey(s.key, s.value, IgnoredReason.BLOCKED))
            elif s.saturated:
                ignored.append(IgnoredKey(s.key, s.value, IgnoredReason.SATURATED))
            elif s.contested:
                ignored.append(IgnoredKey(s.key, s.value, IgnoredReason.CONTESTED))
        linking = [
            (k, c)
            for k, c in snapshot.components.items()
            if isinstance(k, IdentityKey) and not self.strategy.is_blocked(k)
        ]
        groups = group_components(linking)
        now = self._clock()
        holders = [(k, c) for k, c in snapshot.components.items() if isinstance(k, str)]
        if len(groups) == 1:
            matched, part = groups[0]
            component = snapshot.component(part)
            # A contested value the found customer does not hold names someone else (a household member): the
            # other key alone does not settle who is calling.
            held = {IdentityKey(link.key, link.value) for link in component.links}
            strangers = sorted(
                IdentityKey(i.key, i.value)
                for i in ignored
                if i.reason is IgnoredReason.CONTESTED and IdentityKey(i.key, i.value) not in held
            )
            if strangers:
                others = [
                    build_customer(self.strategy, snapshot.component(p), now)
                    for _, p in group_components(holders)
                    if not set(p.profile_ids) & set(part.profile_ids)
                ]
                return Resolution(
                    ResolutionStatus.AMBIGUOUS,
                    None,
                    (build_customer(self.strategy, component, now), *others),
                    tuple(sorted({*matched, *strangers})),
                    Assurance.NONE,
                    tuple(rejected),
                    tuple(ignored),
                )
            customer = build_customer(self.strategy, component, now)
            return Resolution(
                ResolutionStatus.FOUND,
                customer,
                (),
                tuple(sorted(matched)),
                assess(self.strategy, matched),
                tuple(rejected),
                tuple(ignored),
            )
        if len(groups) > 1:
            candidates = tuple(build_customer(self.strategy, snapshot.component(p), now) for _, p in groups)
            seeds = sorted(k for seeds, _ in groups for k in seeds)
            return Resolution(
                ResolutionStatus.AMBIGUOUS,
                None,
                candidates,
                tuple(seeds),
                Assurance.NONE,
                tuple(rejected),
                tuple(ignored),
            )
        shared = (IgnoredReason.SATURATED, IgnoredReason.CONTESTED)
        saturated = [IdentityKey(i.key, i.value) for i in ignored if i.reason in shared]
        if saturated and holders:
            # Shared by too many profiles, or by people the strategy tells apart (a contested value, such as a
            # household landline of two account holders), to mean one person: say so, with a few candidates (its
            # holders' customers), never a guess; the caller asks for a secondary key.
            candidates = tuple(
                build_customer(self.strategy, snapshot.component(p), now) for _, p in group_components(holders)
            )
            return Resolution(
                ResolutionStatus.AMBIGUOUS,
                None,
                candidates,
                tuple(saturated),
                Assurance.NONE,
                tuple(rejected),
                tuple(ignored),
            )
        return Resolution(ResolutionStatus.NOT_FOUND, None, (), (), Assurance.NONE, tuple(rejected), tuple(ignored))

    async def customer(self, profile_id: str, *, consistency: str | None = None) -> Customer | None:
        check_id(profile_id, "profileId")
        return (await self.customers([profile_id], consistency=consistency))[0]

    async def customers(self, profile_ids: Sequence[str], *, consistency: str | None = None) -> list[Customer | None]:
        """Customers of several profiles, in order, from one read; profiles of one customer share one Customer."""
        snapshot = await self.repo.read_profiles(
            sorted(set(profile_ids)), max_nodes=self._max_nodes, consistency=consistency
        )
        built = self._customers_of(snapshot)
        return [built.get(pid) for pid in profile_ids]

    def _customers_of(self, snapshot: Snapshot) -> dict[str, Customer]:
        """Every customer a profiles snapshot holds, by the id of each of their profiles."""
        now = self._clock()
        built: dict[str, Customer] = {}
        for _, part in group_components(list(snapshot.components.items())):
            customer = build_customer(self.strategy, snapshot.component(part), now)
            for profile in customer.profiles:
                built[profile.id] = customer
        return built

    async def profile(self, profile_id: str) -> Profile | None:
        customer = await self.customer(profile_id)
        return next((p for p in customer.profiles if p.id == profile_id), None) if customer else None

    async def explain(self, profile_a: str, profile_b: str) -> Explanation:
        check_id(profile_a, "profileId")
        check_id(profile_b, "profileId")
        if profile_a == profile_b:  # a profile is its own customer, with no link to show
            if await self.profile(profile_a) is None:
                raise NotFound("no such profile")
            return Explanation((profile_a, profile_b), True, ())
        explanation = await self.repo.explain(profile_a, profile_b, max_nodes=self._max_nodes)
        if explanation is None:
            raise NotFound("no such profile")
        return explanation

    async def contested_count(self) -> int:
        """Identities contested now, for /metrics: a count, never a value."""
        return await self.repo.count_contested()

    def export_rows(self, page_size: int = 5000) -> AsyncIterator[ExportRow]:
        """Every profile in id order with its customer's id: the oldest profile of its whole component (the export
        does not stop at max_component_nodes). Streams, `page_size` profiles per page."""
        return self.repo.export_rows(batch_size=page_size)
