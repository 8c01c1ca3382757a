"""How strongly the matched search keys identify a customer."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.model import Assurance, IdentityKey, KeyKind
from app.domain.strategy import Strategy


def assess(strategy: Strategy, matched: Sequence[IdentityKey]) -> Assurance:
    """NONE without a match; STRONG when a secondary key matched or two different keys agree; else WEAK.

    "Different keys" means different attributes (a phone and an email), not two values of one key.
    """
    if not matched:
        return Assurance.NONE
    keys = {identity.key for identity in matched}
    if len(keys) >= 2:
        return Assurance.STRONG
    for key in keys:
        attribute = strategy.attribute(key)
        if attribute is not None and attribute.kind is KeyKind.SECONDARY:
            return Assurance.STRONG
    return Assurance.WEAK
