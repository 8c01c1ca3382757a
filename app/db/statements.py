"""Running the statements of cypher/: by file stem, every value a parameter, rows as dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neo4j import AsyncTransaction

from app.db.queries import query
from app.domain.model import IdentityKey

Rows = list[dict[str, Any]]


async def fetch(tx: AsyncTransaction, name: str, **params: Any) -> Rows:
    result = await tx.run(query(name), params)
    return [record.data() async for record in result]


def key_params(keys: Sequence[IdentityKey]) -> list[dict[str, str]]:
    return [{"key": k.key, "value": k.value} for k in keys]


# The links of one profile a read returns, unless the repository is given the strategy's limit.
