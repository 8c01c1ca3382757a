"""Automatic retention: the strategy's [retention] section, the schedule rule, and the receipts of its runs.

A run is the retention purge of profiles not updated for `inactive_days` days (when [retention] is given), then the
trimming of change log events older than [audit] keep_days (always: keep_days defaults to 400, and the job then runs
daily). One replica at a time runs it, the holder of a lease stored in the database; it starts a run only when the
last run (by any replica) started at least `interval` ago. Receipts hold counts, times and a replica id: never a
profile id or an identity value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_INTERVAL = timedelta(hours=24)
DEFAULT_KEEP_DAYS = 400  # [audit] keep_days: how long the change log keeps an event
RETENTION_ACTOR = "retention"  # the erasure receipts' requested_by for automatic runs

_INTERVAL = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNITS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


class IntervalRefused(ValueError):
    """An interval not written as a positive whole number and one unit: "30s", "15m", "6h", "1d"."""


def parse_interval(text: str) -> timedelta:
    """ "30s", "15m", "6h", "1d" -> timedelta; anything else raises IntervalRefused."""
    found = _INTERVAL.fullmatch(text.strip())
    if found is None:
        raise IntervalRefused('must be a whole number and one unit of s, m, h, d, e.g. "24h", "15m", "1d"')
    return int(found[1]) * _UNITS[found[2]]


def format_interval(interval: timedelta) -> str:
    """The largest unit that writes `interval` exactly: 86400 s -> "1d", 90 min -> "90m"."""
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Retention:
    inactive_days: int
    interval: timedelta = DEFAULT_INTERVAL


@dataclass(frozen=True)
class AuditRetention:
    """The strategy's [audit] section: change log events older than `keep_days` days are trimmed by the automatic
    retention job (every [retention] interval, or daily without [retention]), whatever else the job does."""

    keep_days: int = DEFAULT_KEEP_DAYS


def is_due(last_started_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    """A run may start when no run ever started, or the last one started at least `interval` ago."""
    return last_started_at is None or now - last_started_at >= interval


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # every candidate purged (or already gone)
    FAILED = "FAILED"  # some profiles could not be purged, or an error stopped the run (see `error`)
    ABANDONED = "ABANDONED"  # the replica lost its lease mid-run (it stopped, or died and another took over)


@dataclass(frozen=True)
class RetentionRun:
    """The receipt of one automatic retention run: counts, times and the replica, no personal data."""

    id: str
    replica: str
    started_at: datetime
    inactive_days: int | None  # None: no [retention], the run only trimmed the change log
    status: RunStatus
    finished_at: datetime | None = None
    candidates: int = 0
    profiles_deleted: int = 0
    identities_deleted: int = 0
    failed: int = 0
    error: str | None = None  # an error code (e.g. DATABASE_UNAVAILABLE) when one stopped the run
    changes_trimmed: int = 0  # change log events older than [audit] keep_days deleted by the run


@dataclass(frozen=True)
class Lease:
    """The retention lease as stored: who holds it until when, and when the last run started."""

    holder: str | None
    expires_at: datetime | None
    last_run_started_at: datetime | None
    changes_trimmed: int = 0  # change log events trimmed by every run so far (kept on the lease node)
    changes_trimmed_at: datetime | None = None  # when the last of them were

    def held_by(self, replica: str, now: datetime) -> bool:
        return self.holder == replica and self.expires_at is not None and self.expires_at > now
