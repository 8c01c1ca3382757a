"""Domain objects from the rows of the snapshot and explain statements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db import records
from app.db.statements import Rows
from app.domain.model import (
    Component,
    Explanation,
    ExplanationStep,
    IdentityKey,
    IdentityLink,
    MergeEdge,
    Profile,
    StoredIdentity,
)
from app.services.ports import (
    ProfileComponent,
    Snapshot,
)


def snapshot_from(row: Mapping[str, Any], max_nodes: int) -> Snapshot:
    """A profiles_snapshot row: components keyed by seed profile id, and the details of every profile. A component is
    truncated when it has more than max_nodes nodes or a profile of it more links than the read returns."""
    capped = links_capped(row["profiles"])
    components: dict[str | IdentityKey, ProfileComponent] = {
        seed["seed_id"]: ProfileComponent(
            tuple(seed["profile_ids"]),
            seed["node_count"] > max_nodes or not capped.isdisjoint(seed["profile_ids"]),
        )
        for seed in row["seeds"]
    }
    return Snapshot((), components, component_from(row["profiles"], truncated=False))


def links_capped(rows: Rows) -> set[str]:
    """The ids of the profiles of a snapshot holding more links than it returned (cypher/profiles_snapshot.cypher)."""
    return {str(records.properties(r["profile"])["id"]) for r in rows if r.get("more_links")}


def component_from(rows: Rows, truncated: bool) -> Component:
    profiles: list[Profile] = []
    identities: dict[IdentityKey, StoredIdentity] = {}
    links: list[IdentityLink] = []
    merges: list[MergeEdge] = []
    for row in rows:
        props = records.properties(row["profile"])
        pid = str(props["id"])
        held = []
        for link_row in row["links"]:
            stored = records.identity_from(link_row)
            identities[stored.identity] = stored
            links.append(records.link_from(pid, link_row))
            held.append(stored.identity)
        profiles.append(records.profile_from(props, held))
        merges.extend(records.merge_from(pid, m) for m in row["merges"])
    return Component(tuple(profiles), tuple(identities.values()), tuple(links), tuple(merges), truncated)


def explanation_from(profile_a: str, profile_b: str, row: Mapping[str, Any]) -> Explanation:
    nodes: list[dict[str, Any]] = row["nodes"]
    rels: list[dict[str, Any]] = row["rels"]
    element_ids: list[str] = row["element_ids"]
    if not rels:
        cut_by = tuple(records.identity_from(i) for i in row.get("cut_by") or ())
        return Explanation((profile_a, profile_b), profile_a == profile_b, (), cut_by)
    by_element = dict(zip(element_ids, nodes, strict=True))
    steps: list[ExplanationStep] = []
    # The path alternates profile -[HAS_IDENTITY]- identity -[HAS_IDENTITY]- profile,
    # or profile -[MERGED_INTO]- profile.
    n = 0
    while n < len(rels):
        here = nodes[n]
        rel = rels[n]
        if rel["type"] == "MERGED_INTO":
            there = nodes[n + 1]
            source_id = by_element[rel["from"]]["id"]
            steps.append(
                ExplanationStep(
                    here["id"],
                    there["id"],
                    "MERGE",
                    merge=records.merge_from(source_id, {**rel, "target": by_element[rel["to"]]["id"]}),
                )
            )
            n += 1
            continue
        identity = nodes[n + 1]
        there = nodes[n + 2]
        key = IdentityKey(identity["key"], identity["value"])
        steps.append(
            ExplanationStep(
                here["id"],
                there["id"],
                "IDENTITY",
                identity=key,
                from_link=records.link_from(here["id"], {**rel, "key": key.key, "value": key.value, "linking": True}),
                to_link=records.link_from(
                    there["id"], {**rels[n + 1], "key": key.key, "value": key.value, "linking": True}
                ),
            )
        )
        n += 2
    return Explanation((profile_a, profile_b), True, tuple(steps))
