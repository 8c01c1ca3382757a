"""The resolution strategy: identity attributes, protections and routing rules, read from TOML."""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import NoReturn, TypeVar

import phonenumbers

from app.domain.model import IdentityKey, KeyKind, Normalization, Scalar
from app.domain.normalize import RuleRefused, apply_rule
from app.domain.retention import DEFAULT_INTERVAL, AuditRetention, IntervalRefused, Retention, parse_interval
from app.errors import InvalidStrategy

DEFAULT_STRATEGY_RESOURCE = "default_strategy.toml"

# Attribute names travel as GraphQL values, CLI `KEY=VALUE` arguments and graph property values:
# a plain identifier keeps all three unambiguous.
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class IdentityAttribute:
    name: str
    kind: KeyKind
    normalization: Normalization
    max_per_customer: int | None = None  # distinct values one customer may hold; more is a conflict


class OnSuppressedValue(StrEnum):
    """What an upsert does with a record that carries a value of an erased person."""

    REFUSE_RECORD = "refuse_record"  # refuse the whole record (SUPPRESSED): it is almost always a stale copy
    DROP_VALUE = "drop_value"  # store the record without that value


@dataclass(frozen=True)
class Protections:
    # Stored normalized (see parse_strategy), so is_blocked is a set lookup on the identity's value.
    blocked_values: frozenset[str] = frozenset()
    max_profiles_per_identity: int = 50  # 0 = no limit
    max_identities_per_profile: int = 500  # identities one profile may hold, across calls; more is refused
    on_suppressed_value: OnSuppressedValue = OnSuppressedValue.REFUSE_RECORD
    # An identity whose holders together hold more values of a max_per_customer key than it allows stops linking
    # (app/domain/fanout.py `contested_by`): a household landline does not join two account holders.
    contested_identities: bool = True


@dataclass(frozen=True)
class RoutingRule:
    skill: str
    attribute: str
    equals: Scalar | None = None
    within_days: int | None = None

    def __post_init__(self) -> None:
        if (self.equals is None) == (self.within_days is None):
            raise ValueError("a routing rule needs exactly one of equals / within_days")


@dataclass(frozen=True)
class Routing:
    fallback_skill: str
    rules: tuple[RoutingRule, ...] = ()


@dataclass(frozen=True)
class Strategy:
    name: str
    default_region: str
    attributes: tuple[IdentityAttribute, ...]
    protections: Protections
    routing: Routing
    retention: Retention | None = None  # [retention]: absent, automatic retention is off
    audit: AuditRetention = field(default_factory=AuditRetention)  # [audit]: how long the change log keeps events

    def attribute(self, key: str) -> IdentityAttribute | None:
        # A handful of attributes: a scan beats keeping a second, derived index in a frozen object.
        for attribute in self.attributes:
            if attribute.name == key:
                return attribute
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(attribute.name for attribute in self.attributes)

    @property
    def contest_limits(self) -> dict[str, int]:
        """The keys that contest identities, with their max_per_customer: empty when [protections]
        contested_identities is off."""
        if not self.protections.contested_identities:
            return {}
        return {a.name: a.max_per_customer for a in self.attributes if a.max_per_customer is not None}

    def is_blocked(self, identity: IdentityKey) -> bool:
        """On the blocked list: the value is kept as an observation but never links profiles."""
        return identity.value in self.protections.blocked_values


def default_strategy_text() -> str:
    return resources.files("app.domain").joinpath(DEFAULT_STRATEGY_RESOURCE).read_text(encoding="utf-8")


@functools.cache
def default_strategy() -> Strategy:
    return parse_strategy(default_strategy_text(), origin=f"<packaged {DEFAULT_STRATEGY_RESOURCE}>")


def parse_strategy(text: str, origin: str = "<strategy>") -> Strategy:
    """Parse and check a strategy file; InvalidStrategy names `origin` and the offending key path."""
    return _Parser(origin).strategy(text)


def blocked_forms(
    listed: Iterable[str], attributes: Iterable[IdentityAttribute], default_region: str
) -> frozenset[str]:
    """What the listed blocked values look like once normalized, under every rule the strategy uses.

    The list is not per key, so each value is normalized by every rule that accepts it
    ("+1 000 000 0000" blocks "+10000000000"; "Test@Example.com" blocks "test@example.com" and, for
    an exact-match key, "Test@Example.com"). A value no rule accepts is kept trimmed, as written.
    """
    rules = {attribute.normalization for attribute in attributes}
    values: set[str] = set()
    for raw in listed:
        forms: set[str] = set()
        for rule in sorted(rules):
            try:
                forms.add(apply_rule(rule, raw, default_region))
            except RuleRefused:
                continue
        values |= forms or {raw.strip()}
    return frozenset(values)


_E = TypeVar("_E", bound=StrEnum)


class _Parser:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, path: str, problem: str) -> NoReturn:
        raise InvalidStrategy(f"{self.origin}: {path}: {problem}" if path else f"{self.origin}: {problem}")

    def strategy(self, text: str) -> Strategy:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            self.fail("", f"not valid TOML ({error})")
        top = self.table(
            document,
            "",
            allowed=("name", "default_region", "attributes", "protections", "routing", "retention", "audit"),
            required=("name", "default_region", "attributes", "routing"),
        )
        default_region = self.region(top["default_region"], "default_region")
        attributes = self.attributes(top["attributes"], "attributes")
        return Strategy(
            name=self.string(top["name"], "name"),
            default_region=default_region,
            attributes=attributes,
            protections=self.protections(top.get("protections", {}), "protections", attributes, default_region),
            routing=self.routing(top["routing"], "routing"),
            retention=self.retention(top["retention"], "retention") if "retention" in top else None,
            audit=self.audit(top["audit"], "audit") if "audit" in top else AuditRetention(),
        )

    def attributes(self, value: object, path: str) -> tuple[IdentityAttribute, ...]:
        items = self.array(value, path)
        if not items:
            self.fail(path, "at least one identity attribute is needed")
        attributes: list[IdentityAttribute] = []
        for index, item in enumerate(items):
            here = f"{path}[{index}]"
            entry = self.table(
                item,
                here,
                allowed=("name", "kind", "normalization", "max_per_customer"),
                required=("name", "kind", "normalization"),
            )
            name = self.string(entry["name"], f"{here}.name")
            if not _ATTRIBUTE_NAME.fullmatch(name):
                self.fail(f"{here}.name", "must start with a letter and hold only letters, digits, '_', '.', '-'")
            if any(existing.name == name for existing in attributes):
                self.fail(f"{here}.name", f"duplicate attribute name '{name}'")
            limit = entry.get("max_per_customer")
            attributes.append(
                IdentityAttribute(
                    name=name,
                    kind=self.choice(entry["kind"], f"{here}.kind", KeyKind),
                    normalization=self.choice(entry["normalization"], f"{here}.normalization", Normalization),
                    max_per_customer=None if limit is None else self.integer(limit, f"{here}.max_per_customer", 1),
                )
            )
        return tuple(attributes)

    def protections(
        self, value: object, path: str, attributes: tuple[IdentityAttribute, ...], default_region: str
    ) -> Protections:
        entry = self.table(
            value,
            path,
            allowed=(
                "blocked_values",
                "max_profiles_per_identity",
                "on_suppressed_value",
                "max_identities_per_profile",
                "contested_identities",
            ),
            required=(),
        )
        listed: list[str] = []
        for index, item in enumerate(self.array(entry.get("blocked_values", []), f"{path}.blocked_values")):
            listed.append(self.string(item, f"{path}.blocked_values[{index}]"))
        limit = entry.get("max_profiles_per_identity", Protections.max_profiles_per_identity)
        return Protections(
            blocked_values=blocked_forms(listed, attributes, default_region),
            max_profiles_per_identity=self.integer(limit, f"{path}.max_profiles_per_identity", 0),
            max_identities_per_profile=self.integer(
                entry.get("max_identities_per_profile", Protections.max_identities_per_profile),
                f"{path}.max_identities_per_profile",
                1,
            ),
            on_suppressed_value=self.on_suppressed_value(entry.get("on_suppressed_value"), path),
            contested_identities=self.boolean(
                entry.get("contested_identities", Protections.contested_identities), f"{path}.contested_identities"
            ),
        )

    def on_suppressed_value(self, value: object, path: str) -> OnSuppressedValue:
        if value is None:
            return Protections.on_suppressed_value
        text = self.string(value, f"{path}.on_suppressed_value")
        try:
            return OnSuppressedValue(text)
        except ValueError:
            choices = " or ".join(f'"{c.value}"' for c in OnSuppressedValue)
            self.fail(f"{path}.on_suppressed_value", f"must be {choices}, got {text!r}")

    def routing(self, value: object, path: str) -> Routing:
        entry = self.table(value, path, allowed=("fallback_skill", "rules"), required=("fallback_skill",))
        rules: list[RoutingRule] = []
        for index, item in enumerate(self.array(entry.get("rules", []), f"{path}.rules")):
            here = f"{path}.rules[{index}]"
            rule = self.table(item, here, allowed=("skill", "when"), required=("skill", "when"))
            when = self.table(
                rule["when"], f"{here}.when", allowed=("attribute", "equals", "within_days"), required=("attribute",)
            )
            if ("equals" in when) == ("within_days" in when):
                self.fail(f"{here}.when", "needs exactly one of 'equals' or 'within_days'")
            days = when.get("within_days")
            rules.append(
                RoutingRule(
                    skill=self.string(rule["skill"], f"{here}.skill"),
                    attribute=self.string(when["attribute"], f"{here}.when.attribute"),
                    equals=self.scalar(when["equals"], f"{here}.when.equals") if "equals" in when else None,
                    within_days=None if days is None else self.integer(days, f"{here}.when.within_days", 0),
                )
            )
        return Routing(
            fallback_skill=self.string(entry["fallback_skill"], f"{path}.fallback_skill"), rules=tuple(rules)
        )

    def retention(self, value: object, path: str) -> Retention:
        entry = self.table(value, path, allowed=("inactive_days", "interval"), required=("inactive_days",))
        interval = DEFAULT_INTERVAL
        if "interval" in entry:
            text = entry["interval"]
            if not isinstance(text, str):
                self.fail(f"{path}.interval", 'must be a string such as "24h", "15m" or "1d"')
            try:
                interval = parse_interval(text)
            except IntervalRefused as refused:
                self.fail(f"{path}.interval", f"{text!r} {refused}")
        return Retention(self.integer(entry["inactive_days"], f"{path}.inactive_days", 1), interval)

    def audit(self, value: object, path: str) -> AuditRetention:
        entry = self.table(value, path, allowed=("keep_days",), required=())
        if "keep_days" not in entry:
            return AuditRetention()
        return AuditRetention(self.integer(entry["keep_days"], f"{path}.keep_days", 1))

    # -- typed readers: each checks one value and names its path when it is wrong

    def table(
        self, value: object, path: str, *, allowed: Collection[str], required: Collection[str]
    ) -> dict[str, object]:
        if not isinstance(value, dict):
            self.fail(path, "must be a table")
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else key, f"unknown key (expected one of: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}" if path else key, "required key is missing")
        return {str(key): item for key, item in value.items()}

    def array(self, value: object, path: str) -> list[object]:
        if not isinstance(value, list):
            self.fail(path, "must be an array")
        return list(value)

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, "must be a string")
        if not value.strip():
            self.fail(path, "must not be empty")
        return value.strip()

    def integer(self, value: object, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "must be an integer")
        if value < minimum:
            self.fail(path, f"must be at least {minimum}")
        return value

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
        return value

    def scalar(self, value: object, path: str) -> Scalar:
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, "must be a finite number")
        if not isinstance(value, str | int | float | bool):
            self.fail(path, "must be a string, number or boolean (write dates as strings)")
        return value

    def choice(self, value: object, path: str, enum: type[_E]) -> _E:
        options = [member.value for member in enum]
        if not isinstance(value, str) or value not in options:
            shown = f"'{value}'" if isinstance(value, str) else "a non-string"
            self.fail(path, f"{shown} is not one of: {', '.join(options)}")
        return enum(value)

    def region(self, value: object, path: str) -> str:
        if not isinstance(value, str) or value not in phonenumbers.SUPPORTED_REGIONS:
            self.fail(path, "must be a region code phonenumbers supports, in capitals, e.g. 'US' or 'GB'")
        return value
