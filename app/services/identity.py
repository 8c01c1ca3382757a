"""IdentityService: every use case of idgraph in one object, built once per process (app/web, app/cli) on a
Repository. Its parts live by noun: services/resolve.py, writes.py, erasure.py."""

from __future__ import annotations

from app.services.erasure import Erasures


class IdentityService(Erasures):
    """Resolve, write and erase through the repository port; unit-tested with an in-memory repository."""
