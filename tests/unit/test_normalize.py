from __future__ import annotations

import dataclasses
import unicodedata

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.model import IdentityKey, Normalization, NormalizedIdentity, Rejection, RejectionReason
from app.domain.normalize import MAX_VALUE_LENGTH, normalize, normalize_many, rule_version
from app.domain.strategy import Strategy, default_strategy

STRATEGY = default_strategy()
PHONE, EMAIL, ACCOUNT = "phone_number", "email_address", "account_id"


def value_of(key: str, raw: str, strategy: Strategy = STRATEGY) -> str:
    result = normalize(strategy, key, raw)
    assert isinstance(result, NormalizedIdentity), result
    return result.value


def reason_of(key: str, raw: str, strategy: Strategy = STRATEGY) -> RejectionReason:
    result = normalize(strategy, key, raw)
    assert isinstance(result, Rejection), result
    return result.reason


def in_region(region: str) -> Strategy:
    return dataclasses.replace(STRATEGY, default_region=region)


# -- phone numbers (E164)


@pytest.mark.parametrize(
    "raw",
    [
        "1-800-555-0199",
        "+18005550199",
        "(800) 555-0199",
        "800.555.0199",
        "800 555 0199",
        "+1 (800) 555-0199",
        "001 800 555 0199",
        "00 1 800 555 0199",
        "011 1 800 555 0199",
        "tel:+1-800-555-0199",
        "TEL:+1-800-555-0199;ext=42",
        "tel:800-555-0199;phone-context=+1",
        "  +1 800 555 0199  ",
        "1-800-555-0199 x123",
        "800-555-0199 ext. 123",
        "+18005550199;ext=123",
    ],
)
def test_national_and_international_spellings_are_one_identity(raw: str) -> None:
    assert value_of(PHONE, raw) == "+18005550199"


def test_a_real_number_in_e164_is_kept() -> None:
    assert value_of(PHONE, "+14155552671") == "+14155552671"


def test_the_extension_is_dropped_from_the_key_but_kept_in_the_raw() -> None:
    result = normalize(STRATEGY, PHONE, "+1 800 555 0199 ext. 7")
    assert isinstance(result, NormalizedIdentity)
    assert (result.value, result.raw) == ("+18005550199", "+1 800 555 0199 ext. 7")


def test_numbers_without_country_code_use_the_strategy_region() -> None:
    assert value_of(PHONE, "020 7946 0958", in_region("GB")) == "+442079460958"
    assert value_of(PHONE, "00 44 20 7946 0958") == "+442079460958"
    assert value_of(PHONE, "+44 (0)20 7946 0958") == "+442079460958"


def test_all_zeros_normalizes_to_the_blocked_number() -> None:
    # Possible (ten digits) but not valid: it is accepted, and the default blocked list catches it.
    result = normalize(STRATEGY, PHONE, "0000000000")
    assert isinstance(result, NormalizedIdentity) and result.value == "+10000000000"
    assert STRATEGY.is_blocked(result.identity)


@pytest.mark.parametrize(
    "raw",
    ["555-0199", "12345", "+1 800 555 01999 9", "call me maybe", "+999 123 456 789", "tel:", "@@", "+", "00"],
)
def test_impossible_phone_numbers_are_rejected(raw: str) -> None:
    assert reason_of(PHONE, raw) is RejectionReason.INVALID_PHONE


@pytest.mark.parametrize("key", [PHONE, EMAIL, ACCOUNT])
def test_blank_values_are_rejected_as_empty(key: str) -> None:
    assert reason_of(key, " \t\n") is RejectionReason.EMPTY
    assert reason_of(key, "") is RejectionReason.EMPTY


@pytest.mark.parametrize("key", [PHONE, EMAIL, ACCOUNT])
def test_oversized_values_are_rejected(key: str) -> None:
    assert reason_of(key, "1" * (MAX_VALUE_LENGTH + 1)) is RejectionReason.TOO_LONG


def test_an_unknown_key_is_rejected_not_raised() -> None:
    assert reason_of("fax", "+18005550199") is RejectionReason.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("key", "raw"),
    [(PHONE, "555-0199"), (EMAIL, "jane.doe at example.org"), (EMAIL, "jane@doe@example.org"), (PHONE, "9" * 300)],
)
def test_a_rejection_never_repeats_the_value(key: str, raw: str) -> None:
    result = normalize(STRATEGY, key, raw)
    assert isinstance(result, Rejection)
    assert result.detail and raw not in result.detail and "doe" not in result.detail


def test_each_identity_records_its_rule_and_version() -> None:
    result = normalize(STRATEGY, PHONE, "+18005550199")
    assert isinstance(result, NormalizedIdentity)
    assert result.rule is Normalization.E164
    assert result.rule_version == f"E164/phonenumbers-{phonenumbers.__version__}"
    assert rule_version(Normalization.NONE) == "None/1"
    assert rule_version(Normalization.LOWERCASE) == f"Lowercase/1+unicode-{unicodedata.unidata_version}"


# -- email addresses (Lowercase)


def test_emails_are_trimmed_and_lowercased_only() -> None:
    assert value_of(EMAIL, "  John.Doe+Sales@Example.COM\n") == "john.doe+sales@example.com"


def test_emails_are_lowercased_not_casefolded() -> None:
    assert value_of(EMAIL, "STRASSE@Straße.de") == "strasse@straße.de"


def test_composed_and_decomposed_accents_are_one_email() -> None:
    decomposed, composed = "Jose\u0301@example.com", "Jos\u00e9@example.com"
    assert value_of(EMAIL, decomposed) == value_of(EMAIL, composed) == "jos\u00e9@example.com"


@pytest.mark.parametrize(
    "raw", ["jane.example.org", "jane@", "@example.org", "a@b@c", "jane doe@example.org", "jane@exa\tmple.org"]
)
def test_values_that_are_not_local_at_domain_are_rejected(raw: str) -> None:
    assert reason_of(EMAIL, raw) is RejectionReason.INVALID_EMAIL


# -- exact values (None)


def test_exact_values_are_only_trimmed() -> None:
    assert value_of(ACCOUNT, "  ACCT-98765 ") == "ACCT-98765"
    assert value_of(ACCOUNT, "acct 98765") == "acct 98765"


# -- many values at once


def test_many_values_are_deduplicated_by_normalized_identity_keeping_the_first_spelling() -> None:
    accepted, rejected = normalize_many(
        STRATEGY,
        [
            (PHONE, "1-800-555-0199"),
            (EMAIL, "nope"),
            (PHONE, "+18005550199"),
            ("fax", "1"),
            (EMAIL, "Jane@Example.org"),
            (EMAIL, "jane@example.org "),
        ],
    )
    assert [(n.identity, n.raw) for n in accepted] == [
        (IdentityKey(PHONE, "+18005550199"), "1-800-555-0199"),
        (IdentityKey(EMAIL, "jane@example.org"), "Jane@Example.org"),
    ]
    assert [(r.key, r.reason) for r in rejected] == [
        (EMAIL, RejectionReason.INVALID_EMAIL),
        ("fax", RejectionReason.UNKNOWN_KEY),
    ]


def test_blocked_values_are_accepted_so_they_can_be_stored_as_non_linking() -> None:
    accepted, rejected = normalize_many(STRATEGY, [(PHONE, "(000) 000-0000"), (EMAIL, "TEST@example.com")])
    assert rejected == []
    assert [STRATEGY.is_blocked(n.identity) for n in accepted] == [True, True]


# -- properties


@st.composite
def us_numbers(draw: st.DrawFn) -> tuple[str, str, str]:
    """(area code, exchange, line) of a North American number: NXX NXX XXXX."""
    area = draw(st.integers(2, 9).map(str)) + draw(st.text("0123456789", min_size=2, max_size=2))
    exchange = draw(st.integers(2, 9).map(str)) + draw(st.text("0123456789", min_size=2, max_size=2))
    return area, exchange, draw(st.text("0123456789", min_size=4, max_size=4))


US_RENDERINGS = [
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "({a}) {e}-{l}",
    "{a}{e}{l}",
    "1-{a}-{e}-{l}",
    "+1 {a} {e} {l}",
    "+1{a}{e}{l}",
    "001 {a} {e} {l}",
    "011 1 {a} {e} {l}",
    "tel:+1-{a}-{e}-{l}",
    "tel:+1-{a}-{e}-{l};ext=12",
    "({a}) {e}-{l} x123",
    "{a}-{e}-{l} ext. 9",
    " \t+1 ({a}) {e}-{l}\n",
]


@given(us_numbers(), st.sampled_from(US_RENDERINGS))
def test_every_spelling_of_a_us_number_is_the_same_e164(number: tuple[str, str, str], rendering: str) -> None:
    area, exchange, line = number
    assert value_of(PHONE, rendering.format(a=area, e=exchange, l=line)) == f"+1{area}{exchange}{line}"


@given(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
def test_a_regions_example_number_in_national_or_international_form_is_its_e164(region: str) -> None:
    example = phonenumbers.example_number(region)
    if example is None:
        return
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    strategy = in_region(region)
    assert value_of(PHONE, national, strategy) == e164
    assert value_of(PHONE, international) == e164
    assert value_of(PHONE, "00" + e164[1:]) == e164


@given(st.text("0123456789 +-().x", max_size=24) | st.text(max_size=40), st.sampled_from(["US", "GB", "IT", "DE"]))
def test_phone_normalization_is_idempotent(raw: str, region: str) -> None:
    strategy = in_region(region)
    result = normalize(strategy, PHONE, raw)
    if isinstance(result, NormalizedIdentity):
        assert value_of(PHONE, result.value, strategy) == result.value


@given(st.emails(), st.data())
def test_an_email_in_any_case_with_surrounding_space_is_one_identity(email: str, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=len(email), max_size=len(email)))
    shouted = "".join(ch.upper() if flip else ch for ch, flip in zip(email, flips, strict=True))
    pad = st.text(" \t\n\u00a0\u2003", max_size=3)
    raw = data.draw(pad) + shouted + data.draw(pad)
    assert value_of(EMAIL, raw) == value_of(EMAIL, email) == email.lower()


@given(st.emails() | st.text())
def test_email_normalization_is_idempotent(raw: str) -> None:
    result = normalize(STRATEGY, EMAIL, raw)
    if isinstance(result, NormalizedIdentity):
        assert value_of(EMAIL, result.value) == result.value


@given(st.text())
def test_exact_normalization_is_idempotent_and_ignores_surrounding_space(raw: str) -> None:
    result = normalize(STRATEGY, ACCOUNT, raw)
    if isinstance(result, NormalizedIdentity):
        assert value_of(ACCOUNT, result.value) == result.value == raw.strip()
        assert value_of(ACCOUNT, f" {raw}\t") == result.value


@given(st.sampled_from([PHONE, EMAIL, ACCOUNT, "unknown"]), st.text())
def test_arbitrary_text_never_raises(key: str, raw: str) -> None:
    result = normalize(STRATEGY, key, raw)
    assert isinstance(result, NormalizedIdentity | Rejection)


def test_a_phone_number_whose_key_would_not_normalize_to_itself_is_refused() -> None:
    # "+234 00…" reads as +23402541403158, which normalizes again to +2342541403158 (the national prefix 0 is
    # stripped the second time): a key that would drift, so it is refused rather than stored.
    assert reason_of(PHONE, "+234 002541403158") is RejectionReason.INVALID_PHONE
    assert value_of(PHONE, "+23402541403158") == "+2342541403158"


def test_a_value_sent_as_its_own_key_is_accepted_as_that_key() -> None:
    # apply_rule skips the fixed-point check when the rule returns its input unchanged (it just mapped the value to
    # itself): the key is still the value and a fixed point.
    for key, raw in [(PHONE, "+2342541403158"), (PHONE, "+14155552671"), (EMAIL, "a.b@example.com"), (ACCOUNT, "A-1")]:
        assert value_of(key, raw) == raw
        assert value_of(key, value_of(key, raw)) == raw
