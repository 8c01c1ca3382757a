"""The change log: one event per state change of the graph, ordered by a cursor, holding ids and never values.

Events are written by the repository in the transaction of the change they describe and read back by the change
feed (GraphQL `changes`, REST, `idgraph changes`, the inspector's history, outbound delivery). An event names
profiles and customers by id only: no identity value and no attribute value, so the log stays clean after an
erasure and outlives the profiles it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.errors import InvalidInput


class ChangeType(StrEnum):
    """What changed. Stable: receivers and the GraphQL enum match on these."""

    PROFILE_CREATED = "PROFILE_CREATED"
    PROFILE_UPDATED = "PROFILE_UPDATED"  # attributes or identities of an existing profile
    IDENTITY_LINKED = "IDENTITY_LINKED"  # an identity added to a profile by a link (a flow's "Merge" action)
    IDENTITY_UNLINKED = "IDENTITY_UNLINKED"
    IDENTITY_SATURATED = "IDENTITY_SATURATED"  # an identity stopped linking (fan-out limit, contested)
    IDENTITY_RELEASED = "IDENTITY_RELEASED"  # a contested identity links again: the conflict went away
    MERGE = "MERGE"
    UNMERGE = "UNMERGE"
    CUSTOMER_ERASED = "CUSTOMER_ERASED"
    PROFILE_ERASED = "PROFILE_ERASED"
    RETENTION_PURGE = "RETENTION_PURGE"


# Actors that are not API tokens.
ACTOR_CLI = "cli"
ACTOR_CRM_WEBHOOK = "crm-webhook"
ACTOR_RETENTION = "retention"

MAX_CURSOR_DIGITS = 19  # a signed 64-bit sequence number
MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class Audit:
    """Who asks for a change and why: stored on every event the change writes."""

    actor: str
    request_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ChangeEvent:
    seq: int  # strictly increasing across the whole database, in commit order
    type: ChangeType
    profile_ids: tuple[str, ...]  # for a merge: (source, target); for an erasure: the ids erased
    customer_before: str | None
    customer_after: str | None
    actor: str
    request_id: str | None
    reason: str | None
    at: datetime

    @property
    def cursor(self) -> str:
        return cursor_of(self.seq)


def cursor_of(seq: int) -> str:
    """The cursor clients see: the sequence number in decimal (receivers may compare them as integers)."""
    return str(seq)


def parse_cursor(text: str | None) -> int:
    """The sequence number after which to read; None or "" reads from the start."""
    if text is None or text == "":
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > MAX_CURSOR_DIGITS or int(text) > MAX_SEQ:
        raise InvalidInput("after is not a cursor of this change feed (a cursor is a decimal number it returned)")
    return int(text)
