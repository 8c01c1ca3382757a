"""Reads: resolve and profile snapshots, components, explain, export."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from app.db import export, records
from app.db.base import RepositoryBase
from app.db.snapshots import component_from, explanation_from, links_capped, snapshot_from
from app.db.statements import key_params
from app.domain.model import (
    Explanation,
    ExportRow,
    IdentityKey,
    StoredIdentity,
)
from app.errors import Conflict
from app.services.ports import (
    ProfileComponent,
    Snapshot,
)


class ReadRepository(RepositoryBase):
    async def read_identities(
        self,
        keys: Sequence[IdentityKey],
        *,
        max_nodes: int,
        candidates: int = 5,
        consistency: str | None = None,
        leader: bool = False,
    ) -> Snapshot:
        row = (
            await self._one(
                "resolve_snapshot",
                consistency,
                leader=leader,
                identities=key_params(keys),
                max_nodes=max_nodes,
                candidates=candidates,
                max_links=self._max_links,
            )
        )[0]
        stored: dict[IdentityKey, StoredIdentity] = {}
        components: dict[str | IdentityKey, ProfileComponent] = {}
        capped = links_capped(row["profiles"])
        for seed in row["seeds"]:
            identity = records.identity_from(seed)
            stored[identity.identity] = identity
            if seed["profile_ids"]:
                truncated = seed["node_count"] > max_nodes or not capped.isdisjoint(seed["profile_ids"])
                component = ProfileComponent(tuple(seed["profile_ids"]), truncated)
                components[seed["holder"] if seed["holder"] is not None else identity.identity] = component
        return Snapshot(tuple(stored.values()), components, component_from(row["profiles"], truncated=False))

    async def read_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> Snapshot:
        rows = await self._one(
            "profiles_snapshot",
            consistency,
            profile_ids=list(profile_ids),
            max_nodes=max_nodes,
            max_links=self._max_links,
        )
        return snapshot_from(rows[0], max_nodes)

    async def components_of_profiles(
        self, profile_ids: Sequence[str], *, max_nodes: int, consistency: str | None = None
    ) -> dict[str, ProfileComponent]:
        rows = await self._query(
            "component_from_profiles", consistency, profile_ids=list(profile_ids), max_nodes=max_nodes
        )
        return {r["seed_id"]: ProfileComponent(tuple(r["profile_ids"]), r["node_count"] > max_nodes) for r in rows}

    async def explain(self, profile_a: str, profile_b: str, *, max_nodes: int) -> Explanation | None:
        rows = await self._one("explain_link", a=profile_a, b=profile_b, max_nodes=max_nodes)
        if not rows:
            return None
        if rows[0]["too_large"]:
            raise Conflict(f"the customer has more than {max_nodes} nodes: too large to explain")
        return explanation_from(profile_a, profile_b, rows[0])

    async def count_contested(self) -> int:
        rows = await self._one("count_contested")
        return int(rows[0]["contested"])

    def export_rows(self, *, batch_size: int = 5000) -> AsyncIterator[ExportRow]:
        return export.export_rows(self._driver, self._database, batch_size=batch_size)
