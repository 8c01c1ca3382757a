"""What `idgraph purge --status` prints: the retention lease (with the change log events its runs trimmed to [audit]
keep_days) and the last automatic runs, as text or JSON.

Counts, times, statuses and replica ids only: a run receipt holds no personal data to show. The JSON's times have
the one format of app/jsonshape.py; the text's are to the second.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.retention import Lease, RetentionRun
from app.jsonshape import rfc3339


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def lease_line(lease: Lease | None, now: datetime) -> str:
    if lease is None:
        return "lease: never taken (no automatic retention run yet)"
    last = (
        f"; last run started {_when(lease.last_run_started_at)}; change log: {lease.changes_trimmed:,} events trimmed"
    )
    if lease.changes_trimmed_at is not None:
        last += f", last at {_when(lease.changes_trimmed_at)}"
    if lease.holder is not None and lease.expires_at is not None and lease.expires_at > now:
        return f"lease: held by {lease.holder} until {_when(lease.expires_at)}{last}"
    return f"lease: free{last}"


def run_lines(runs: list[RetentionRun]) -> list[str]:
    if not runs:
        return ["no automatic retention run recorded"]
    head = f"{'started':<25} {'finished':<25} {'status':<10} {'days':>5} {'candidates':>10} {'profiles':>9} "
    lines = [head + f"{'identities':>10} {'failed':>7} {'trimmed':>9}  replica"]
    for r in runs:
        days = "-" if r.inactive_days is None else str(r.inactive_days)  # "-": no [retention], only trimmed
        lines.append(
            f"{_when(r.started_at):<25} {_when(r.finished_at):<25} {r.status:<10} {days:>5} "
            f"{r.candidates:>10,} {r.profiles_deleted:>9,} {r.identities_deleted:>10,} {r.failed:>7,} "
            f"{r.changes_trimmed:>9,}  {r.replica}" + (f"  ({r.error})" if r.error else "")
        )
    return lines


def status_json(lease: Lease | None, runs: list[RetentionRun], now: datetime) -> dict[str, object]:
    held = lease is not None and lease.holder is not None and lease.expires_at is not None and lease.expires_at > now
    return {
        "lease": None
        if lease is None
        else {
            "holder": lease.holder if held else None,
            "expires_at": _optional_time(lease.expires_at) if held else None,
            "last_run_started_at": _optional_time(lease.last_run_started_at),
            "changes_trimmed": lease.changes_trimmed,
            "changes_trimmed_at": _optional_time(lease.changes_trimmed_at),
        },
        "runs": [
            {
                "id": r.id,
                "replica": r.replica,
                "status": str(r.status),
                "started_at": rfc3339(r.started_at),
                "finished_at": _optional_time(r.finished_at),
                "inactive_days": r.inactive_days,
                "candidates": r.candidates,
                "profiles_deleted": r.profiles_deleted,
                "identities_deleted": r.identities_deleted,
                "failed": r.failed,
                "error": r.error,
                "changes_trimmed": r.changes_trimmed,
            }
            for r in runs
        ],
    }


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)
