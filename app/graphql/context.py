"""The per-request context resolvers read: the use cases, who is calling, and the request id for logs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.auth import Principal
from app.services.changes import ChangeFeed
from app.services.identity import IdentityService

if TYPE_CHECKING:
    from app.web.observability import Metrics


# Database calls one request may have in flight at once. A query's root fields run concurrently (30 aliased `resolve`
# fields would be 30 database calls at once, 30 pooled connections and 30 transactions); mutations run one by one.
MAX_DB_CALLS_PER_REQUEST = 4


@dataclass
class Context:
    service: IdentityService
    principal: Principal | None
    request_id: str
    metrics: Metrics | None = None
    feed: ChangeFeed | None = None  # the change feed (identity:audit)
    # Every resolver that calls the database holds it for the call: one per request, so one request cannot take
    # more than MAX_DB_CALLS_PER_REQUEST of the driver's connections.
    db_calls: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_DB_CALLS_PER_REQUEST))
