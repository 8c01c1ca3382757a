from __future__ import annotations

from app.domain.assurance import assess
from app.domain.model import Assurance, IdentityKey
from app.domain.strategy import default_strategy

STRATEGY = default_strategy()
PHONE = IdentityKey("phone_number", "+18005550199")
EMAIL = IdentityKey("email_address", "jane@example.org")
ACCOUNT = IdentityKey("account_id", "ACCT-1")


def test_nothing_matched_is_no_assurance() -> None:
    assert assess(STRATEGY, []) is Assurance.NONE


def test_a_single_primary_key_is_weak() -> None:
    assert assess(STRATEGY, [PHONE]) is Assurance.WEAK


def test_two_values_of_one_primary_key_are_still_weak() -> None:
    assert assess(STRATEGY, [PHONE, IdentityKey("phone_number", "+14155552671")]) is Assurance.WEAK


def test_a_secondary_key_is_strong() -> None:
    assert assess(STRATEGY, [ACCOUNT]) is Assurance.STRONG


def test_two_different_keys_agreeing_are_strong() -> None:
    assert assess(STRATEGY, [PHONE, EMAIL]) is Assurance.STRONG


def test_a_key_the_strategy_does_not_know_is_not_secondary() -> None:
    assert assess(STRATEGY, [IdentityKey("fax", "1")]) is Assurance.WEAK
