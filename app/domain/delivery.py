"""Outbound delivery of the change feed: the delivery settings, the backoff rule, and parked batches.

Events are delivered at least once, in cursor order, in batches of up to `batch_size`. A batch that fails
`max_attempts` times in a row is parked (kept by its cursor range, with its attempts and last error) and delivery
goes on with the next one. What is stored of a failure is an error class, never a response body or a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.changes import MAX_SEQ
from app.errors import InvalidInput

BACKOFF_CAP_S = 300.0  # the longest wait between two attempts at one batch


@dataclass(frozen=True)
class Delivery:
    """Where and how the change feed is delivered (IDGRAPH_CHANGE_WEBHOOK_*)."""

    url: str
    secret: str
    batch_size: int = 100
    max_attempts: int = 8
    timeout_s: float = 10.0  # one POST, connection to response
    backoff_s: float = 1.0  # the wait after the first failed attempt; doubled after each further one
    backoff_cap_s: float = BACKOFF_CAP_S
    poll_s: float = 1.0  # how often the holder looks for new events when it has delivered them all
    lease_s: float = 60.0  # how long a replica's delivery lease lasts unless renewed


def backoff_s(failed_attempts: int, base_s: float, cap_s: float = BACKOFF_CAP_S) -> float:
    """The wait after `failed_attempts` failures in a row (>= 1): base, 2*base, 4*base, ..., at most cap."""
    if failed_attempts < 1:
        return 0.0
    return min(cap_s, base_s * float(2 ** min(failed_attempts - 1, 62)))


def error_class(status: int | None, error: BaseException | None) -> str:
    """What is recorded of a failed attempt: `HTTP_<status>` for a non-2xx answer, `TIMEOUT`,
    `CONNECTION_REFUSED`, else the exception's type name. Never a message or a body: they may hold data."""
    if status is not None:
        return f"HTTP_{status}"
    if isinstance(error, TimeoutError):
        return "TIMEOUT"
    if isinstance(error, ConnectionRefusedError):
        return "CONNECTION_REFUSED"
    return type(error).__name__ if error is not None else "UNKNOWN"


def failure_kind(error: str) -> str:
    """The metrics label of an error class, from a small fixed set: http_4xx, http_5xx, http_other, timeout,
    connection_refused, other."""
    if error.startswith("HTTP_") and len(error) == 8:
        return {"4": "http_4xx", "5": "http_5xx"}.get(error[5], "http_other")
    return {"TIMEOUT": "timeout", "CONNECTION_REFUSED": "connection_refused"}.get(error, "other")


@dataclass(frozen=True)
class DeliveryState:
    delivered_seq: int  # the cursor delivered so far (or parked past): 0 before the first batch
    parked: int  # batches parked and not yet redelivered


@dataclass(frozen=True)
class ParkedBatch:
    """A batch that failed `attempts` times: the events with first_seq <= seq <= last_seq."""

    first_seq: int
    last_seq: int
    events: int
    attempts: int
    last_error: str
    parked_at: datetime
    retried_at: datetime | None = None  # the last `idgraph changes --redeliver` that failed

    @property
    def id(self) -> str:
        return batch_id(self.first_seq, self.last_seq)


def batch_id(first_seq: int, last_seq: int) -> str:
    """A parked batch's id, its cursor range: "<first>-<last>"."""
    return f"{first_seq}-{last_seq}"


def parse_batch_id(text: str) -> tuple[int, int]:
    """ "<first>-<last>" -> (first, last); refused unless both are cursors and first <= last."""
    first, sep, last = text.strip().partition("-")
    if not sep or not (first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
        raise InvalidInput(f"{text!r} is not a parked batch id (write it as FIRST-LAST cursors, e.g. 101-200)")
    if len(first) > 19 or len(last) > 19 or max(int(first), int(last)) > MAX_SEQ:
        raise InvalidInput(f"{text!r} is not a parked batch id (a cursor is at most {MAX_SEQ})")
    if int(first) > int(last):
        raise InvalidInput(f"{text!r} is not a parked batch id (FIRST must not be after LAST)")
    return int(first), int(last)
