"""Re-normalization decisions: which stored identities fold, and how their edges land on the normalized value."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.fanout import IdentityState
from app.domain.folding import EdgeProps, FoldEdge, Verdict, plan_fold, review
from app.domain.model import IdentityKey, NormalizedIdentity, RejectionReason, StoredIdentity
from app.domain.normalize import normalize
from app.domain.strategy import default_strategy

STRATEGY = default_strategy()
PHONE = "phone_number"
TARGET = IdentityKey(PHONE, "+18005550199")


def stored(key: str, value: str, *, rule: str = "", version: str = "", blocked: bool = False) -> StoredIdentity:
    return StoredIdentity(key, value, rule, version, blocked, False, 1)


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def test_an_unnormalized_value_folds_onto_its_normalized_form() -> None:
    verdict = review(STRATEGY, stored(PHONE, "1-800-555-0199"))
    assert verdict.verdict is Verdict.FOLD
    assert verdict.target is not None and verdict.target.identity == TARGET


def test_a_normalized_value_stays_and_a_stale_rule_version_is_noticed() -> None:
    current = normalize(STRATEGY, PHONE, "+18005550199")
    assert isinstance(current, NormalizedIdentity)
    fresh = review(STRATEGY, stored(PHONE, "+18005550199", rule="E164", version=current.rule_version))
    assert fresh.verdict is Verdict.KEEP and not fresh.stale_rule
    old = review(STRATEGY, stored(PHONE, "+18005550199", rule="E164", version="E164/phonenumbers-8.0.0"))
    assert old.verdict is Verdict.KEEP and old.stale_rule


def test_values_that_no_longer_normalize_are_rejected_with_a_reason() -> None:
    short = review(STRATEGY, stored(PHONE, "12"))
    assert short.verdict is Verdict.REJECTED
    assert short.rejection is not None and short.rejection.reason is RejectionReason.INVALID_PHONE
    unknown = review(STRATEGY, stored("fax_number", "+18005550199"))
    assert unknown.verdict is Verdict.REJECTED
    assert unknown.rejection is not None and unknown.rejection.reason is RejectionReason.UNKNOWN_KEY


def test_a_value_newly_on_the_blocked_list_is_blocked_once() -> None:
    assert review(STRATEGY, stored("email_address", "test@example.com")).verdict is Verdict.BLOCK
    assert review(STRATEGY, stored("email_address", "test@example.com", blocked=True)).verdict is Verdict.KEEP


def edge(profile: str, old: str, first: int, last: int, raw: str, target_edge: EdgeProps | None = None) -> FoldEdge:
    return FoldEdge(profile, IdentityKey(PHONE, old), TARGET, EdgeProps(raw, "crm", at(first), at(last)), target_edge)


def target_of() -> dict[IdentityKey, NormalizedIdentity]:
    result = normalize(STRATEGY, PHONE, "+18005550199")
    assert isinstance(result, NormalizedIdentity)
    return {TARGET: result}


def test_edges_of_one_profile_merge_into_one_with_the_earliest_first_and_latest_last_seen() -> None:
    edges = [
        edge("p1", "1-800-555-0199", 3, 5, "1-800-555-0199"),
        edge(
            "p1", "(800) 555-0199", 1, 4, "(800) 555-0199", target_edge=EdgeProps("+18005550199", "ivr", at(2), at(9))
        ),
        edge("p2", "(800) 555-0199", 6, 7, "(800) 555-0199"),
    ]
    plan = plan_fold(edges, target_of(), {TARGET: IdentityState(1, False, False)}, limit=50)
    by_profile = {link.profile_id: link for link in plan.links}
    assert by_profile["p1"].exists and by_profile["p1"].props == EdgeProps("+18005550199", "ivr", at(1), at(9))
    assert not by_profile["p2"].exists and by_profile["p2"].linking
    assert by_profile["p2"].props == EdgeProps("(800) 555-0199", "crm", at(6), at(7))
    assert (plan.edges_moved, plan.edges_merged, plan.saturate) == (3, 2, ())


def test_a_fold_that_pushes_a_value_over_the_fan_out_limit_saturates_it() -> None:
    edges = [edge(f"p{n}", "1-800-555-0199", 1, 1, "x") for n in range(3)]
    targets = target_of()
    plan = plan_fold(edges, targets, {TARGET: IdentityState(1, False, False)}, limit=3)
    assert plan.saturate == (TARGET,) and not any(link.linking for link in plan.links)
    within = plan_fold(edges, targets, {TARGET: IdentityState(0, False, False)}, limit=3)
    assert within.saturate == () and all(link.linking for link in within.links)
    assert plan_fold(edges, targets, {TARGET: IdentityState(99, False, False)}, limit=0).saturate == ()


def test_edges_moved_onto_a_blocked_value_do_not_link() -> None:
    plan = plan_fold(
        [edge("p1", "1-800-555-0199", 1, 1, "x")], target_of(), {TARGET: IdentityState(0, False, True)}, 50
    )
    assert plan.saturate == () and not plan.links[0].linking
