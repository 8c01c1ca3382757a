"""Re-normalization: re-apply the strategy to every stored identity, folding duplicates written before
normalization; bounded pages, each page one transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.domain.changes import ACTOR_CLI, Audit
from app.domain.folding import Fold, Verdict, review
from app.domain.model import NormalizedIdentity
from app.domain.strategy import Strategy
from app.domain.suppression import Secret, suppression_hash
from app.services.ports import MaintenanceStore


@dataclass
class RenormalizeReport:
    dry_run: bool
    identities_checked: int = 0
    identities_folded: int = 0  # stored values that were not normalized, folded onto their normalized value
    identities_created: int = 0  # normalized values that had no node yet
    edges_moved: int = 0
    edges_merged: int = 0  # moved edges that joined an edge the profile already had to the normalized value
    saturated: int = 0  # normalized values the fold pushed over the fan-out limit
    contested: int = 0  # values the fold made contested (holders with too many values of a max_per_customer key)
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
            await _apply(
                repo,
                report,
                folds,
                block,
                relabel,
                limit=limit,
                now=now,
                dry_run=dry_run,
                contest_limits=strategy.contest_limits,
            )
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
    contest_limits: Mapping[str, int],
) -> None:
    if folds:
        outcome = await repo.fold(
            folds, limit=limit, now=now, dry_run=dry_run, contest_limits=contest_limits, audit=Audit(ACTOR_CLI)
        )
        report.contested += outcome.contested
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
        report.edges_blocked += await repo.block_identities(
            [b.identity for b in block], now=now, contest_limits=contest_limits, max_profiles_per_identity=limit
        )
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
        f"  values contested                 {report.contested:>10,}  (holders with too many values of a"
        " max_per_customer key: stopped linking)",
        f"  values newly blocked             {report.blocked:>10,}  ({report.edges_blocked:,} edges stopped linking)",
        f"  rule versions updated            {report.rules_updated:>10,}",
        f"  suppressed (erased) values       {report.suppressed:>10,}"
        "  (normalized form on the suppression list: deleted with their edges, not folded)",
        f"  no longer valid                  {rejected:>10,}  (reported and left as they are)",
    ]
    lines += [f"    {reason:<30}{count:>10,}" for reason, count in sorted(report.rejected.items())]
    return lines
