"""Identity values → normalized keys, one rule per identity attribute, never raising on input."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import phonenumbers

from app.domain.model import Normalization, NormalizedIdentity, Rejection, RejectionReason

if TYPE_CHECKING:
    from app.domain.strategy import Strategy

# No real phone number, email address (RFC 5321: 254) or account id comes close; anything longer
# is garbage or an attack on the phone parser, refused before any work is done on it.
MAX_VALUE_LENGTH = 256

# Stored with every identity. A version changes whenever the rule or what it depends on changes
# (phonenumbers metadata, Python's Unicode tables), so `renormalize` can find values to re-check.
RULE_VERSIONS: Mapping[Normalization, str] = MappingProxyType(
    {
        Normalization.E164: f"E164/phonenumbers-{phonenumbers.__version__}",
        Normalization.LOWERCASE: f"Lowercase/1+unicode-{unicodedata.unidata_version}",
        Normalization.NONE: "None/1",
    }
)


class RuleRefused(ValueError):
    """A value a normalization rule cannot turn into a key. `detail` never contains the value."""

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def rule_version(rule: Normalization) -> str:
    return RULE_VERSIONS[rule]


# A leading "00" international prefix, separators allowed ("00 44 …", "(00)44…"). phonenumbers only
# understands the default region's own prefix (011 for the US), but "00" is what most of the world
# types, so it is tried first, falling back to a national reading when it does not give a number.
_INTERNATIONAL_00 = re.compile(r"[\s().\-/]*0[\s().\-/]*0")


def _strip_tel_uri(text: str) -> str:
    # RFC 3966: tel:<number>[;param]*. Parameters (ext=, isub=, …) are not part of the key, but a
    # global phone-context supplies the country code of a local number.
    number, *params = text[len("tel:") :].split(";")
    number = number.strip()
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context" and value.strip().startswith("+") and not number.startswith("+"):
            number = value.strip() + number
    return number


def _parse_possible(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
        # IS_POSSIBLE only: IS_POSSIBLE_LOCAL_ONLY (a 7-digit US number) lacks the area code that makes
        # it one person's number. Validity (is_valid_number) is deliberately not required: it follows
        # number-range metadata that changes between releases, and fictional 555 numbers must work.
        if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except Exception:
        # NumberParseException for ordinary bad input; anything else the parser throws on adversarial
        # text must still become a per-value rejection, never a failed request.
        return None


def _e164(raw: str, default_region: str) -> str:
    text = raw.strip()
    if text[:4].lower() == "tel:":
        text = _strip_tel_uri(text)
    attempts: list[tuple[str, str | None]] = []
    prefix = _INTERNATIONAL_00.match(text)
    if prefix is not None:
        attempts.append(("+" + text[prefix.end() :], None))
    attempts.append((text, default_region))
    for candidate, region in attempts:
        value = _parse_possible(candidate, region)
        if value is not None:
            return value
    raise RuleRefused(RejectionReason.INVALID_PHONE, "not a possible phone number")


def _lowercase(raw: str, default_region: str) -> str:
    # NFC before lowering so composed and decomposed spellings meet; again after, because lowering
    # can leave a sequence NFC would compose. .lower(), not .casefold(): casefold rewrites ß to ss,
    # which changes the address rather than its case.
    value = unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw.strip()).lower())
    # Every whitespace character but the ASCII space is unprintable (Unicode "Separator" or "Other").
    if " " in value or not value.isprintable():
        raise RuleRefused(RejectionReason.INVALID_EMAIL, "contains whitespace or control characters")
    local, _, domain = value.partition("@")
    if not local or not domain or "@" in domain:
        raise RuleRefused(RejectionReason.INVALID_EMAIL, "not of the form local@domain")
    return value


def _exact(raw: str, default_region: str) -> str:
    return raw.strip()


_RULES: Mapping[Normalization, Callable[[str, str], str]] = MappingProxyType(
    {
        Normalization.E164: _e164,
        Normalization.LOWERCASE: _lowercase,
        Normalization.NONE: _exact,
    }
)

_UNSTABLE_REASON: Mapping[Normalization, RejectionReason] = MappingProxyType(
    {
        Normalization.E164: RejectionReason.INVALID_PHONE,
        Normalization.LOWERCASE: RejectionReason.INVALID_EMAIL,
        Normalization.NONE: RejectionReason.EMPTY,
    }
)


def apply_rule(rule: Normalization, raw: str, default_region: str) -> str:
    """The normalized value of `raw` under `rule`; raises RuleRefused when there is none."""
    trimmed = raw.strip()
    if not trimmed:
        raise RuleRefused(RejectionReason.EMPTY, "nothing left after trimming whitespace")
    if len(trimmed) > MAX_VALUE_LENGTH:
        raise RuleRefused(RejectionReason.TOO_LONG, f"longer than {MAX_VALUE_LENGTH} characters")
    value = _RULES[rule](trimmed, default_region)
    # Keys must be fixed points: the stored value, normalized again (by `renormalize`, or when a
    # client sends it back), has to name the same node. A value whose key would drift is refused.
    # A value equal to its input (an E.164 number sent as such, an address in lower case already) is
    # one without asking: the rule just mapped it to itself.
    if value != trimmed and not _is_fixed_point(rule, value, default_region):
        raise RuleRefused(_UNSTABLE_REASON[rule], "no stable normalized form")
    return value


@functools.lru_cache(maxsize=1 << 15)
def _is_fixed_point(rule: Normalization, value: str, default_region: str) -> bool:
    """Whether `value` normalizes to itself. Cached: a bulk load meets the same person's number again and again, and
    parsing a phone number is the dearest step of normalization."""
    try:
        return _RULES[rule](value, default_region) == value
    except RuleRefused:
        return False


def normalize(strategy: Strategy, key: str, raw: str) -> NormalizedIdentity | Rejection:
    attribute = strategy.attribute(key)
    if attribute is None:
        return Rejection(key, RejectionReason.UNKNOWN_KEY, "not an identity attribute of the strategy")
    try:
        value = apply_rule(attribute.normalization, raw, strategy.default_region)
    except RuleRefused as refused:
        return Rejection(key, refused.reason, refused.detail)
    return NormalizedIdentity(
        key=key,
        value=value,
        raw=raw.strip(),  # what is stored as the edge's spelling: trimmed, so at most MAX_VALUE_LENGTH (apply_rule)
        rule=attribute.normalization,
        rule_version=rule_version(attribute.normalization),
    )


def normalize_many(
    strategy: Strategy, pairs: Iterable[tuple[str, str]]
) -> tuple[list[NormalizedIdentity], list[Rejection]]:
    """Normalize (key, raw) pairs: accepted identities, first spelling of each kept, and rejections, in input order.

    Blocked values are accepted: the caller stores them as non-linking observations, telling them
    apart with `strategy.is_blocked(identity.identity)`.
    """
    accepted: dict[tuple[str, str], NormalizedIdentity] = {}  # by (key, value): an IdentityKey's equality, built faster
    rejected: list[Rejection] = []
    for key, raw in pairs:
        result = normalize(strategy, key, raw)
        if isinstance(result, Rejection):
            rejected.append(result)
        else:
            accepted.setdefault((result.key, result.value), result)
    return list(accepted.values()), rejected
