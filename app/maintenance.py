"""Clean-up use cases: retention purge (erasure of inactive profiles) and re-normalization of stored identities.

Both work in bounded pages, each write its own transaction, so they can be interrupted and run again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app.domain.folding import Fold, FoldOutcome, Verdict, review
from app.domain.model import IdentityKey, NormalizedIdentity, StoredIdentity
from app.domain.strategy import Strategy
from app.domain.suppression import Secret, suppression_hash
from app.errors import AppError, DatabaseUnavailable, NotFound, Timeout
from app.services import PURGE_REQUEST_PREFIX, IdentityService

logger = logging.getLogger(__name__)

PURGE_ACTOR = "retention-purge"


class MaintenanceStore(Protocol):
    """What the clean-up use cases need from storage (app/db/maintenance.py implements it on Neo4j)."""

    async def inactive_profiles(
        self, before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[tuple[str, datetime]]: ...

    async def next_identity_key(self, after: str) -> str | None: ...

    async def identity_page(self, key: str, after: str, limit: int) -> list[StoredIdentity]: ...

    async def set_identity_rules(self, identities: Sequence[NormalizedIdentity]) -> int: ...

    async def block_identities(self, keys: Sequence[IdentityKey], *, now: datetime) -> int: ...

    async def fold(self, folds: Sequence[Fold], *, limit: int, now: datetime, dry_run: bool = False) -> FoldOutcome: ...


# -- retention purge ------------------------------------------------------------------------------------------


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


@dataclass
class RenormalizeReport:
    dry_run: bool
    identities_checked: int = 0
    identities_folded: int = 0  # stored values that were not normalized, folded onto their normalized value
    identities_created: int = 0  # normalized values that had no node yet
    edges_moved: int = 0
    edges_merged: int = 0  # moved edges that joined an edge the profile already had to the normalized value
    saturated: int = 0  # normalized values the fold pushed over the fan-out limit
    blocked: int = 0  # values now on the blocked list, marked blocked
    edges_blocked: int = 0  # their linking edges, turned into observations
    rules_updated: int = 0  # normalized values stored with another rule or rule version, relabelled
    suppressed: int = 0  # values whose normalized form was erased (on the suppression list): deleted, not folded
    rejected: Counter[str] = field(default_factory=Counter)  # values that no longer normalize, by reason (kept)
    keys: Counter[str] = field(default_factory=Counter)  # identities checked, by key


async def renormalize(
    repo: MaintenanceStore,
    strategy: Strategy,
    *,
    erasure_key: Secret,
    now: datetime,
    dry_run: bool = False,
    page_size: int = 500,
    on_page: Callable[[RenormalizeReport], None] = lambda report: None,
) -> RenormalizeReport:
    """Re-apply the strategy to every stored identity, page by page in (key, value) order; each page's changes
    are one transaction. Values that no longer normalize are counted by reason and left in place. A value whose
    normalized form is on the suppression list (keyed with `erasure_key`) belongs to an erased person: it is
    deleted with its edges, never folded (which would re-create the erased value), and counted as suppressed."""
    report = RenormalizeReport(dry_run=dry_run)
    limit = strategy.protections.max_profiles_per_identity
    key = await repo.next_identity_key("")
    while key is not None:
        after = ""
        while True:
            page = await repo.identity_page(key, after, page_size)
            folds: list[Fold] = []
            block: list[NormalizedIdentity] = []
            relabel: list[NormalizedIdentity] = []
            for stored in page:
                report.identities_checked += 1
                report.keys[stored.key] += 1
                verdict = review(strategy, stored)
                if verdict.verdict is Verdict.REJECTED:
                    assert verdict.rejection is not None
                    report.rejected[str(verdict.rejection.reason)] += 1
                    continue
                assert verdict.target is not None
                if verdict.verdict is Verdict.FOLD:
                    target = verdict.target
                    hashed = suppression_hash(erasure_key, target.identity)
                    folds.append(Fold(stored.identity, target, strategy.is_blocked(target.identity), hashed))
                elif verdict.verdict is Verdict.BLOCK:
                    block.append(verdict.target)
                if verdict.stale_rule:
                    relabel.append(verdict.target)
            await _apply(repo, report, folds, block, relabel, limit=limit, now=now, dry_run=dry_run)
            on_page(report)
            if len(page) < page_size:
                break
            after = page[-1].value
        key = await repo.next_identity_key(key)
    return report


async def _apply(
    repo: MaintenanceStore,
    report: RenormalizeReport,
    folds: list[Fold],
    block: list[NormalizedIdentity],
    relabel: list[NormalizedIdentity],
    *,
    limit: int,
    now: datetime,
    dry_run: bool,
) -> None:
    if folds:
        outcome = await repo.fold(folds, limit=limit, now=now, dry_run=dry_run)
        report.identities_folded += len(folds) - outcome.suppressed
        report.suppressed += outcome.suppressed
        report.identities_created += outcome.identities_created
        report.edges_moved += outcome.plan.edges_moved
        report.edges_merged += outcome.plan.edges_merged
        report.saturated += len(outcome.plan.saturate)
        report.edges_blocked += outcome.edges_blocked
    report.blocked += len(block)
    report.rules_updated += len(relabel)
    if dry_run:
        return
    if block:
        report.edges_blocked += await repo.block_identities([b.identity for b in block], now=now)
    if relabel:
        await repo.set_identity_rules(relabel)


def renormalize_summary(report: RenormalizeReport) -> list[str]:
    head = "renormalize dry run (nothing written)" if report.dry_run else "renormalize done"
    keys = ", ".join(f"{key} {count:,}" for key, count in sorted(report.keys.items())) or "none"
    rejected = sum(report.rejected.values())
    lines = [
        f"{head}: {report.identities_checked:,} identities checked ({keys})",
        f"  folded onto the normalized value {report.identities_folded:>10,}"
        f"  ({report.identities_created:,} normalized values created)",
        f"  edges moved                      {report.edges_moved:>10,}"
        f"  ({report.edges_merged:,} merged into an edge the profile already had)",
        f"  normalized values saturated      {report.saturated:>10,}  (over the fan-out limit: stopped linking)",
        f"  values newly blocked             {report.blocked:>10,}  ({report.edges_blocked:,} edges stopped linking)",
        f"  rule versions updated            {report.rules_updated:>10,}",
        f"  suppressed (erased) values       {report.suppressed:>10,}"
        "  (normalized form on the suppression list: deleted with their edges, not folded)",
        f"  no longer valid                  {rejected:>10,}  (reported and left as they are)",
    ]
    lines += [f"    {reason:<30}{count:>10,}" for reason, count in sorted(report.rejected.items())]
    return lines
