"""The erasure key of every process and service the test suite runs on its shared database.

The database records the first writer's key fingerprint and refuses writers with another key, so everything that
writes to the session database within a test uses this one (at least 32 characters, as the service requires)."""

from __future__ import annotations

ERASURE_KEY = "idgraph-test-suite-erasure-key-0123456789"
