"""The per-request context resolvers read: the use cases, who is calling, and the request id for logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.auth import Principal
from app.services import IdentityService

if TYPE_CHECKING:
    from app.observability import Metrics


@dataclass
class Context:
    service: IdentityService
    principal: Principal | None
    request_id: str
    metrics: Metrics | None = None
