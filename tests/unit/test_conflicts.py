from __future__ import annotations

import dataclasses

from app.domain.conflicts import find_conflicts
from app.domain.model import ConflictReport, IdentityKey, KeyKind, Normalization
from app.domain.strategy import IdentityAttribute, default_strategy

STRATEGY = default_strategy()


def test_two_account_ids_on_one_customer_are_a_conflict_with_sorted_values() -> None:
    identities = [
        IdentityKey("account_id", "ACCT-9"),
        IdentityKey("phone_number", "+18005550199"),
        IdentityKey("account_id", "ACCT-1"),
    ]
    assert find_conflicts(STRATEGY, identities) == (ConflictReport("account_id", ("ACCT-1", "ACCT-9"), 1),)


def test_values_within_the_limit_are_no_conflict() -> None:
    identities = [IdentityKey("account_id", "ACCT-1"), IdentityKey("account_id", "ACCT-1")]
    assert find_conflicts(STRATEGY, identities) == ()


def test_keys_without_a_limit_never_conflict() -> None:
    phones = [IdentityKey("phone_number", f"+1800555010{digit}") for digit in range(5)]
    assert find_conflicts(STRATEGY, phones) == ()


def test_each_limited_key_is_reported_in_strategy_order() -> None:
    strategy = dataclasses.replace(
        STRATEGY,
        attributes=(
            IdentityAttribute("email_address", KeyKind.PRIMARY, Normalization.LOWERCASE, max_per_customer=2),
            *STRATEGY.attributes[2:],
        ),
    )
    identities = [IdentityKey("account_id", v) for v in "BA"] + [IdentityKey("email_address", v) for v in "zyx"]
    assert find_conflicts(strategy, identities) == (
        ConflictReport("email_address", ("x", "y", "z"), 2),
        ConflictReport("account_id", ("A", "B"), 1),
    )
