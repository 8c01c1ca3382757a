"""The pure parts of the request bounds: the identities-per-profile limit in the strategy, the raw spelling kept
trimmed, and consistency tokens signed with a key derived from the erasure key."""

from __future__ import annotations

import base64
import json

import pytest
from neo4j import Bookmarks

from app.db import records
from app.domain.model import NormalizedIdentity
from app.domain.normalize import normalize
from app.domain.strategy import default_strategy, default_strategy_text, parse_strategy
from app.errors import InvalidStrategy

BOOKMARKS = Bookmarks.from_raw_values(["FB:kcwQhLN8oayzRjyXABj3FSIT+jOQ"])


def _values(bookmarks: Bookmarks | None) -> frozenset[str]:
    assert bookmarks is not None
    return bookmarks.raw_values


def with_protections(line: str) -> str:
    return default_strategy_text().replace("[protections]\n", f"[protections]\n{line}\n")


def test_a_profile_holds_at_most_500_identities_unless_the_strategy_says_otherwise() -> None:
    assert default_strategy().protections.max_identities_per_profile == 500
    parsed = parse_strategy(with_protections("max_identities_per_profile = 20"))
    assert parsed.protections.max_identities_per_profile == 20


@pytest.mark.parametrize("value", ["0", "-1", "true", '"20"', "2.5"])
def test_a_bad_identities_per_profile_limit_is_refused_by_name(value: str) -> None:
    with pytest.raises(InvalidStrategy, match=r"protections\.max_identities_per_profile"):
        parse_strategy(with_protections(f"max_identities_per_profile = {value}"))


def test_the_raw_spelling_kept_is_trimmed() -> None:
    result = normalize(default_strategy(), "email_address", " \t Jane@Example.org \n")
    assert isinstance(result, NormalizedIdentity)
    assert (result.value, result.raw) == ("jane@example.org", "Jane@Example.org")


def test_a_token_gives_back_its_bookmarks_under_the_key_that_signed_it() -> None:
    key = records.token_key(b"erasure key of every replica")
    token = records.token_from(BOOKMARKS, key)
    assert _values(records.bookmarks_from(token, key)) == BOOKMARKS.raw_values
    assert _values(records.bookmarks_from(token, records.token_key(b"erasure key of every replica"))) == (
        BOOKMARKS.raw_values
    )
    assert records.bookmarks_from(None, key) is None and records.bookmarks_from("", key) is None


def test_the_token_key_is_not_the_erasure_key() -> None:
    assert records.token_key(b"erasure key") != b"erasure key"
    assert records.token_key(b"erasure key") != records.token_key(b"another erasure key")


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda token: token.partition(".")[0], id="unsigned"),
        pytest.param(lambda token: token + "A", id="signature-changed"),
        pytest.param(
            lambda token: (
                base64.urlsafe_b64encode(json.dumps(["FB:made-up"]).encode()).decode().rstrip("=")
                + "."
                + token.partition(".")[2]
            ),
            id="payload-changed",
        ),
        pytest.param(lambda token: "not a token at all", id="garbage"),
        pytest.param(lambda token: "é.é", id="not-ascii"),
    ],
)
def test_a_token_this_service_did_not_sign_is_refused(forge: object) -> None:
    key = records.token_key(b"erasure key of every replica")
    token = records.token_from(BOOKMARKS, key)
    assert callable(forge)
    with pytest.raises(ValueError):
        records.bookmarks_from(forge(token), key)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = records.token_from(BOOKMARKS, records.token_key(b"one erasure key"))
    with pytest.raises(ValueError):
        records.bookmarks_from(token, records.token_key(b"another erasure key"))
