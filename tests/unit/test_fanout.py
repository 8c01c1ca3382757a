"""The fan-out rule decides which new edges link and which identities stop linking."""

from __future__ import annotations

from app.domain.fanout import Contest, Holding, IdentityState, contested_by, plan_links
from app.domain.model import IdentityKey, Normalization, NormalizedIdentity

PHONE = NormalizedIdentity("phone_number", "+18005550100", "800-555-0100", Normalization.E164, "E164/test")
KEY = PHONE.identity


def holdings(*profile_ids: str) -> list[Holding]:
    return [Holding(pid, PHONE, "crm") for pid in profile_ids]


def test_new_holders_within_the_limit_link() -> None:
    saturate, writes = plan_links(holdings("a", "b"), set(), {KEY: IdentityState(3, False, False)}, limit=5)
    assert saturate == []
    assert [(w.holding.profile_id, w.linking, w.exists) for w in writes] == [("a", True, False), ("b", True, False)]


def test_crossing_the_limit_saturates_and_nothing_links() -> None:
    saturate, writes = plan_links(holdings("a", "b"), set(), {KEY: IdentityState(4, False, False)}, limit=5)
    assert saturate == [KEY]
    assert all(not w.linking for w in writes)


def test_exactly_at_the_limit_still_links() -> None:
    saturate, writes = plan_links(holdings("a"), set(), {KEY: IdentityState(4, False, False)}, limit=5)
    assert saturate == [] and writes[0].linking


def test_a_profile_already_holding_the_identity_is_not_a_new_holder() -> None:
    existing = {("a", KEY)}
    saturate, writes = plan_links(holdings("a", "a"), existing, {KEY: IdentityState(5, False, False)}, limit=5)
    assert saturate == []
    assert [(w.holding.profile_id, w.exists) for w in writes] == [("a", True)]


def test_blocked_and_saturated_values_never_link_and_zero_means_no_limit() -> None:
    for state in (IdentityState(0, False, True), IdentityState(0, True, False)):
        saturate, writes = plan_links(holdings("a"), set(), {KEY: state}, limit=5)
        assert saturate == [] and not writes[0].linking
    saturate, writes = plan_links(holdings("a"), set(), {KEY: IdentityState(10_000, False, False)}, limit=0)
    assert saturate == [] and writes[0].linking


def test_identity_keys_order_saturations() -> None:
    other = NormalizedIdentity("email_address", "a@example.com", "a@example.com", Normalization.LOWERCASE, "L/1")
    both = [Holding("x", PHONE, "crm"), Holding("x", other, "crm")]
    states = {KEY: IdentityState(1, False, False), other.identity: IdentityState(1, False, False)}
    saturate, _ = plan_links(both, set(), states, limit=1)
    assert saturate == sorted([KEY, IdentityKey("email_address", "a@example.com")])


# -- the contested rule ---------------------------------------------------------------------------------------

ONE_ACCOUNT = {"account_id": 1}


def test_holders_with_two_accounts_contest_a_shared_value() -> None:
    found = contested_by("phone_number", {"account_id": {"A-1", "A-2"}}, ONE_ACCOUNT)
    assert found == Contest("account_id", 2)


def test_holders_with_one_account_between_them_do_not_contest() -> None:
    assert contested_by("phone_number", {"account_id": {"A-1"}, "email_address": {"x", "y"}}, ONE_ACCOUNT) is None


def test_exactly_max_per_customer_values_is_not_contested() -> None:
    assert contested_by("phone_number", {"account_id": {"A-1", "A-2"}}, {"account_id": 2}) is None


def test_the_key_itself_is_never_contested_by_its_own_values() -> None:
    assert contested_by("account_id", {"account_id": {"A-1", "A-2"}}, ONE_ACCOUNT) is None


def test_the_first_key_in_name_order_gives_the_reason() -> None:
    held = {"account_id": {"A-1", "A-2"}, "tax_id": {"T-1", "T-2", "T-3"}}
    assert contested_by("phone_number", held, {"tax_id": 1, "account_id": 1}) == Contest("account_id", 2)


def test_no_limits_contest_nothing() -> None:
    assert contested_by("phone_number", {"account_id": {"A-1", "A-2"}}, {}) is None
