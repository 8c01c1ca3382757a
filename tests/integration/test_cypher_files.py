"""Every Cypher file is used by the code, compiles on the real Neo4j, and the component queries keep the
pruning breadth-first expand (a node-set walk, not path enumeration)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.config import REPO_ROOT, Settings
from app.db.driver import AsyncDriver
from app.db.queries import cypher_dir, query

pytestmark = pytest.mark.neo4j

NAMES = sorted(p.stem for p in cypher_dir().glob("*.cypher"))
COMPONENT_QUERIES = ["resolve_snapshot", "profiles_snapshot", "component_from_profiles", "explain_link"]


def code_text() -> str:
    return "\n".join(p.read_text() for p in (REPO_ROOT / "app").rglob("*.py"))


def test_every_cypher_file_is_used_by_the_code() -> None:
    text = code_text()
    unused = [name for name in NAMES if not re.search(rf"[\"']{name}[\"']", text)]
    assert unused == []


def test_every_query_the_code_names_has_a_file() -> None:
    named = set(re.findall(r"_rows\(tx, \"([a-z_]+)\"|_query\(\s*\"([a-z_]+)\"|query\(\"([a-z_]+)\"\)", code_text()))
    missing = [n for group in named for n in group if n and not (cypher_dir() / f"{n}.cypher").exists()]
    assert missing == []


def operators(plan: Any) -> list[str]:
    found = [plan["operatorType"]]
    for child in plan.get("children", []):
        found.extend(operators(child))
    return found


@pytest.mark.parametrize("name", NAMES)
async def test_cypher_file_compiles(name: str, driver: AsyncDriver, settings: Settings) -> None:
    text = query(name)
    params = {p: None for p in re.findall(r"\$([a-z_]+)", text)}
    result = await driver.execute_query("EXPLAIN " + text, params, database_=settings.neo4j_database)
    assert result.summary.plan is not None


@pytest.mark.parametrize("name", COMPONENT_QUERIES)
async def test_component_query_uses_the_pruning_breadth_first_expand(
    name: str, driver: AsyncDriver, settings: Settings
) -> None:
    result = await driver.execute_query(
        "EXPLAIN " + query(name),
        {
            "identities": [],
            "profile_ids": [],
            "max_nodes": 10,
            "after": "",
            "limit": 1,
            "candidates": 5,
            "max_links": 10,
            "a": "",
            "b": "",
        },
        database_=settings.neo4j_database,
    )
    expands = [op for op in operators(result.summary.plan) if op.startswith("VarLengthExpand")]
    assert expands and all("Pruning,BFS" in op for op in expands), expands


def test_schema_files_are_numbered_and_named() -> None:
    names = sorted(p.name for p in (cypher_dir() / "schema").glob("*.cypher"))
    assert names and all(re.fullmatch(r"\d{3}_[a-z0-9_]+\.cypher", n) for n in names)
    assert Path(cypher_dir() / "schema").is_dir()
