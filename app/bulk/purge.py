"""Retention purge: erase profiles not updated for N days, one at a time through the erasure cascade; never
suppresses (a purge is not an opt-out). Bounded pages, each erasure its own transaction: it can be interrupted
and run again."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.domain.changes import ACTOR_CLI
from app.errors import AppError, DatabaseUnavailable, NotFound, Timeout
from app.services.erasure import PURGE_REQUEST_PREFIX
from app.services.identity import IdentityService
from app.services.ports import MaintenanceStore

logger = logging.getLogger(__name__)

PURGE_ACTOR = ACTOR_CLI  # `idgraph purge`; the automatic runs are app.domain.retention.RETENTION_ACTOR's


@dataclass
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    candidates: int = 0
    profiles_deleted: int = 0
    identities_deleted: int = 0
    suppressed: int = 0
    already_done: int = 0  # a receipt of the same request id existed, or the profile vanished meanwhile
    failed: Counter[str] = field(default_factory=Counter)  # by error code


def purge_request_id(day: datetime, profile_id: str) -> str:
    return f"{PURGE_REQUEST_PREFIX}{day.date().isoformat()}:{profile_id}"


async def purge(
    service: IdentityService,
    repo: MaintenanceStore,
    *,
    inactive_days: int,
    now: datetime,
    dry_run: bool = False,
    page_size: int = 500,
    on_candidate: Callable[[str], None] = lambda profile_id: None,
    actor: str = PURGE_ACTOR,
    report: PurgeReport | None = None,
) -> PurgeReport:
    """Erase every profile not updated for `inactive_days` days, one profile at a time, through the erasure
    cascade (a receipt per profile, by `actor`; the profiles and the identities no remaining profile holds are
    deleted). A retention purge is not an opt-out: it suppresses nothing, so the same person or source record may
    be written again later. Profiles of the same customer that were updated recently stay. Request ids are
    `purge:<date>:<profile_id>`, so a re-run the same day repeats nothing. A dry run only lists the candidates.
    `report`, when given, is filled as the purge goes, so a caller sees the counts of a run an error stopped."""
    if inactive_days < 1:
        raise ValueError("inactive_days must be at least 1")
    report = report if report is not None else PurgeReport(cutoff=now - timedelta(days=inactive_days), dry_run=dry_run)
    reason = f"retention: inactive {inactive_days} days"
    cursor: tuple[datetime, str] | None = None
    while True:
        page = await repo.inactive_profiles(report.cutoff, cursor, page_size)
        for profile_id, _ in page:
            report.candidates += 1
            on_candidate(profile_id)
            if not dry_run:
                await _purge_one(service, profile_id, purge_request_id(now, profile_id), reason, actor, report)
        if len(page) < page_size:
            return report
        last_id, last_at = page[-1]
        cursor = (last_at, last_id)


async def _purge_one(
    service: IdentityService, profile_id: str, request_id: str, reason: str, actor: str, report: PurgeReport
) -> None:
    try:
        previous = await service.erasure_receipt(request_id)
        if previous is not None:
            report.already_done += 1
            return
        receipt = await service.erase(
            profile_id, request_id=request_id, reason=reason, actor=actor, whole_customer=False, suppress=False
        )
    except NotFound:
        report.already_done += 1  # erased or purged by someone else since the page was read
        return
    except (DatabaseUnavailable, Timeout):
        raise  # operational: stop, the caller reports it; a re-run picks up where this one stopped
    except AppError as error:
        logger.warning("purge of profile %s failed: %s", profile_id, error.code)
        report.failed[error.code] += 1
        return
    report.profiles_deleted += receipt.profiles_deleted
    report.identities_deleted += receipt.identities_deleted
    report.suppressed += receipt.suppressed


# -- re-normalization -----------------------------------------------------------------------------------------
