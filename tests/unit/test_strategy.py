from __future__ import annotations

import pytest

from app.domain.model import IdentityKey, KeyKind, Normalization
from app.domain.strategy import (
    IdentityAttribute,
    OnSuppressedValue,
    Protections,
    Routing,
    RoutingRule,
    Strategy,
    default_strategy,
    default_strategy_text,
    parse_strategy,
)
from app.errors import InvalidInput, InvalidStrategy

# The "Strategy file" example of API.md, verbatim: the packaged default must be exactly this.
API_EXAMPLE = """\
name = "Deterministic_Phone_Email_Account"
default_region = "US"                # for phone numbers written without a country code

[[attributes]]
name = "phone_number"
kind = "primary"                     # primary | secondary
normalization = "E164"               # E164 | Lowercase | None

[[attributes]]
name = "email_address"
kind = "primary"
normalization = "Lowercase"

[[attributes]]
name = "account_id"
kind = "secondary"
normalization = "None"
max_per_customer = 1                 # a customer holding two values of it is a conflict

[protections]
blocked_values = ["+10000000000", "test@example.com"]   # compared after normalization; never link
max_profiles_per_identity = 50       # an identity shared by more profiles stops linking; 0 = no limit

[routing]
fallback_skill = "General_Support"

[[routing.rules]]
skill = "Premium_Support"
when = { attribute = "tier", equals = "Platinum" }

[[routing.rules]]
skill = "Post_Purchase_Support"
when = { attribute = "last_order_date", within_days = 7 }
"""


MINIMAL = """\
name = "s"
default_region = "GB"
attributes = [{ name = "email", kind = "primary", normalization = "Lowercase" }]
routing = { fallback_skill = "General" }
"""


def edited(old: str, new: str) -> str:
    """The default strategy text with one fragment replaced (the fragment must be there)."""
    text = default_strategy_text()
    assert old in text
    return text.replace(old, new, 1)


def refusal(text: str) -> str:
    with pytest.raises(InvalidStrategy) as caught:
        parse_strategy(text, origin="ops/strategy.toml")
    message = caught.value.message
    assert message.startswith("ops/strategy.toml: ")
    return message


def test_packaged_default_is_the_api_example_verbatim() -> None:
    assert default_strategy_text() == API_EXAMPLE


def test_packaged_default_parses_to_the_documented_strategy() -> None:
    assert default_strategy() == Strategy(
        name="Deterministic_Phone_Email_Account",
        default_region="US",
        attributes=(
            IdentityAttribute("phone_number", KeyKind.PRIMARY, Normalization.E164),
            IdentityAttribute("email_address", KeyKind.PRIMARY, Normalization.LOWERCASE),
            IdentityAttribute("account_id", KeyKind.SECONDARY, Normalization.NONE, max_per_customer=1),
        ),
        protections=Protections(
            blocked_values=frozenset({"+10000000000", "test@example.com"}),
            max_profiles_per_identity=50,
        ),
        routing=Routing(
            fallback_skill="General_Support",
            rules=(
                RoutingRule("Premium_Support", "tier", equals="Platinum"),
                RoutingRule("Post_Purchase_Support", "last_order_date", within_days=7),
            ),
        ),
    )


def test_attributes_are_looked_up_by_name_and_listed_in_file_order() -> None:
    strategy = default_strategy()
    assert strategy.keys == ("phone_number", "email_address", "account_id")
    phone = strategy.attribute("phone_number")
    assert phone is not None and phone.normalization is Normalization.E164
    assert strategy.attribute("fax") is None


def test_blocked_values_are_compared_after_normalization() -> None:
    strategy = parse_strategy(
        edited(
            'blocked_values = ["+10000000000", "test@example.com"]',
            'blocked_values = ["+1 (000) 000-0000", "  Test@Example.COM "]',
        )
    )
    assert strategy.is_blocked(IdentityKey("phone_number", "+10000000000"))
    assert strategy.is_blocked(IdentityKey("email_address", "test@example.com"))
    assert not strategy.is_blocked(IdentityKey("phone_number", "+18005550199"))


def test_a_blocked_value_no_rule_accepts_is_kept_as_written() -> None:
    # Without an exact-match attribute nothing accepts "n/a", yet the listing must not be lost.
    text = edited('normalization = "None"', 'normalization = "Lowercase"')
    strategy = parse_strategy(text.replace('"test@example.com"', '"  n/a "'))
    assert "n/a" in strategy.protections.blocked_values


def test_protections_and_rules_are_optional() -> None:
    strategy = parse_strategy(MINIMAL)
    assert strategy.protections == Protections()
    assert strategy.routing == Routing("General", ())
    assert strategy.attributes == (IdentityAttribute("email", KeyKind.PRIMARY, Normalization.LOWERCASE),)


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ('name = "Deterministic', 'colour = "blue"\nname = "Deterministic', "colour"),
        ('name = "email_address"', 'name = "email_address"\nlabel = "Email"', "attributes[1].label"),
        ("max_profiles_per_identity = 50", "max_profiles_per_identity = 50\nlimit = 3", "protections.limit"),
        ('fallback_skill = "General_Support"', 'fallback_skill = "General_Support"\nqueue = "q"', "routing.queue"),
        ('skill = "Premium_Support"', 'skill = "Premium_Support"\npriority = 1', "routing.rules[0].priority"),
        ("within_days = 7 }", "within_days = 7, hours = 3 }", "routing.rules[1].when.hours"),
    ],
)
def test_unknown_keys_are_refused_at_every_level_with_their_path(old: str, new: str, path: str) -> None:
    message = refusal(edited(old, new))
    assert f": {path}: unknown key" in message


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ('kind = "secondary"', 'kind = "tertiary"', "attributes[2].kind"),
        ('kind = "secondary"', 'kind = "Secondary"', "attributes[2].kind"),
        ('normalization = "None"', 'normalization = "lowercase"', "attributes[2].normalization"),
        ('normalization = "E164"', "normalization = 164", "attributes[0].normalization"),
        ('default_region = "US"', 'default_region = "XX"', "default_region"),
        ('default_region = "US"', 'default_region = "us"', "default_region"),
        ('default_region = "US"', "default_region = 1", "default_region"),
        ('name = "account_id"', 'name = "phone_number"', "attributes[2].name"),
        ('name = "account_id"', 'name = " "', "attributes[2].name"),
        ('name = "account_id"', 'name = "account id"', "attributes[2].name"),
        ('name = "Deterministic_Phone_Email_Account"', 'name = ""', "name"),
        ("max_per_customer = 1 ", "max_per_customer = -1 ", "attributes[2].max_per_customer"),
        ("max_per_customer = 1 ", "max_per_customer = 0 ", "attributes[2].max_per_customer"),
        ("max_per_customer = 1 ", 'max_per_customer = "1" ', "attributes[2].max_per_customer"),
        ("max_profiles_per_identity = 50", "max_profiles_per_identity = -5", "protections.max_profiles_per_identity"),
        ("max_profiles_per_identity = 50", "max_profiles_per_identity = true", "protections.max_profiles_per_identity"),
        ('"+10000000000", "test@example.com"', '"+10000000000", 5', "protections.blocked_values[1]"),
        ('"+10000000000", "test@example.com"', '"+10000000000", ""', "protections.blocked_values[1]"),
        ('blocked_values = ["+10000000000", "test@example.com"]', 'blocked_values = "x"', "protections.blocked_values"),
        ('fallback_skill = "General_Support"', 'fallback_skill = ""', "routing.fallback_skill"),
        ('skill = "Premium_Support"', 'skill = ""', "routing.rules[0].skill"),
        ('attribute = "tier"', 'attribute = ""', "routing.rules[0].when.attribute"),
        ('equals = "Platinum" }', 'equals = "Platinum", within_days = 3 }', "routing.rules[0].when"),
        ('attribute = "tier", equals = "Platinum" }', 'attribute = "tier" }', "routing.rules[0].when"),
        ("within_days = 7 }", "within_days = -1 }", "routing.rules[1].when.within_days"),
        ("within_days = 7 }", "within_days = 7.5 }", "routing.rules[1].when.within_days"),
        ('equals = "Platinum" }', "equals = 2024-01-01 }", "routing.rules[0].when.equals"),
        ('equals = "Platinum" }', "equals = nan }", "routing.rules[0].when.equals"),
        ('equals = "Platinum" }', "equals = [1] }", "routing.rules[0].when.equals"),
        ('when = { attribute = "tier", equals = "Platinum" }', 'when = "tier"', "routing.rules[0].when"),
    ],
)
def test_bad_values_are_refused_naming_their_path(old: str, new: str, path: str) -> None:
    message = refusal(edited(old, new))
    assert f": {path}: " in message


@pytest.mark.parametrize("key", ["name", "default_region", "attributes", "routing"])
def test_a_missing_required_key_is_refused(key: str) -> None:
    parse_strategy(MINIMAL)
    text = "".join(line for line in MINIMAL.splitlines(keepends=True) if not line.startswith(f"{key} ="))
    assert f": {key}: required key is missing" in refusal(text)


def test_a_strategy_without_attributes_is_refused() -> None:
    text = MINIMAL.replace('[{ name = "email", kind = "primary", normalization = "Lowercase" }]', "[]")
    assert ": attributes: at least one" in refusal(text)


def test_text_that_is_not_toml_is_refused_with_the_origin() -> None:
    assert "not valid TOML" in refusal('name = "unterminated\n')


def test_a_bad_strategy_is_an_invalid_input_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_strategy("name = 1")
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.message.startswith("<strategy>: ")


def test_a_routing_rule_needs_exactly_one_condition() -> None:
    with pytest.raises(ValueError):
        RoutingRule("Skill", "tier")
    with pytest.raises(ValueError):
        RoutingRule("Skill", "tier", equals="Gold", within_days=3)


def test_a_record_carrying_an_erased_value_is_refused_whole_unless_the_strategy_drops_the_value() -> None:
    assert default_strategy().protections.on_suppressed_value is OnSuppressedValue.REFUSE_RECORD
    line = "max_profiles_per_identity = 50"
    dropping = parse_strategy(edited(line, f'{line}\non_suppressed_value = "drop_value"'))
    assert dropping.protections.on_suppressed_value is OnSuppressedValue.DROP_VALUE
    message = refusal(edited(line, f'{line}\non_suppressed_value = "drop"'))
    assert ': protections.on_suppressed_value: must be "refuse_record" or "drop_value"' in message


def test_contested_identities_are_on_by_default_and_follow_max_per_customer() -> None:
    strategy = default_strategy()
    assert strategy.protections.contested_identities is True
    assert strategy.contest_limits == {"account_id": 1}
    line = "max_profiles_per_identity = 50"
    off = parse_strategy(edited(line, f"{line}\ncontested_identities = false"))
    assert off.protections.contested_identities is False and off.contest_limits == {}
    none_limited = parse_strategy(edited("max_per_customer = 1", "# no limit"))
    assert none_limited.contest_limits == {}


def test_contested_identities_must_be_a_boolean() -> None:
    line = "max_profiles_per_identity = 50"
    message = refusal(edited(line, f'{line}\ncontested_identities = "yes"'))
    assert ": protections.contested_identities: must be true or false" in message
