"""Limits and shapes of what clients send, checked before anything is normalized or written."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.domain.model import ProfileInput, Scalar
from app.errors import InvalidInput

MAX_IDENTITIES_PER_PROFILE = 50
MAX_SEARCH_KEYS = 10
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_TEXT = 4096
MAX_SOURCE_ID = 256

_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True)
class FieldNames:
    """What the caller calls the fields of a ProfileInput, for the messages that name them."""

    source_id: str
    profile_id: str


CAMEL_CASE = FieldNames(source_id="sourceId", profile_id="profileId")  # the API's (GraphQL) names
SNAKE_CASE = FieldNames(source_id="source_id", profile_id="profile_id")  # REST bodies, bulk files


def check_profile_input(item: ProfileInput, names: FieldNames = CAMEL_CASE) -> None:
    if not _SOURCE.fullmatch(item.source):
        raise InvalidInput("source must be 1-64 letters, digits or _.:- and start with a letter or digit")
    if item.source_id is not None and not (0 < len(item.source_id.strip()) <= MAX_SOURCE_ID):
        raise InvalidInput(f"{names.source_id} must be 1-{MAX_SOURCE_ID} characters")
    if item.source_id is not None and item.profile_id is not None:
        raise InvalidInput(f"give {names.source_id} or {names.profile_id}, not both")
    if item.profile_id is not None:
        check_id(item.profile_id, names.profile_id)
    if len(item.identities) > MAX_IDENTITIES_PER_PROFILE:
        raise InvalidInput(f"at most {MAX_IDENTITIES_PER_PROFILE} identities per profile")
    check_attributes(item.attributes)


def check_attributes(attributes: Mapping[str, Scalar]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes per profile")
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.fullmatch(name):
            raise InvalidInput("attribute names must be 1-64 letters, digits or _ and not start with a digit")
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_TEXT:
            raise InvalidInput(f"attribute {name}: text longer than {MAX_ATTRIBUTE_TEXT} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"attribute {name}: numbers must be finite")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            raise InvalidInput(f"attribute {name}: integer out of range")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"attribute {name}: values must be strings, numbers, booleans or null")


def check_id(value: str, what: str) -> None:
    if not _ID.fullmatch(value):
        raise InvalidInput(f"{what} must be 1-128 letters, digits or _.:-")


def check_search_keys(count: int) -> None:
    if count == 0:
        raise InvalidInput("give at least one identity to resolve")
    if count > MAX_SEARCH_KEYS:
        raise InvalidInput(f"at most {MAX_SEARCH_KEYS} identities per lookup")


def profile_input_from_record(record: object) -> ProfileInput:
    """A bulk-file record ({"source", "source_id", "profile_id", "identities": [{"key", "value"}], "attributes"})
    as a ProfileInput; InvalidInput names what is wrong."""
    if not isinstance(record, dict):
        raise InvalidInput("a record must be a JSON object")
    unknown = set(record) - {"source", "source_id", "profile_id", "identities", "attributes"}
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}")
    source = record.get("source")
    if not isinstance(source, str):
        raise InvalidInput("source must be a string")
    identities = record.get("identities", [])
    if not isinstance(identities, list):
        raise InvalidInput("identities must be a list")
    pairs: list[tuple[str, str]] = []
    for n, identity in enumerate(identities):
        if not isinstance(identity, dict) or set(identity) - {"key", "value", "type"}:
            raise InvalidInput(f"identities[{n}] must be an object with key and value")
        key, value = identity.get("key"), identity.get("value")
        if not isinstance(key, str) or not isinstance(value, str | int):
            raise InvalidInput(f"identities[{n}]: key must be a string and value a string")
        pairs.append((key, str(value)))
    attributes = record.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise InvalidInput("attributes must be an object")
    optional = {}
    for name in ("source_id", "profile_id"):
        value = record.get(name)
        if value is not None and not isinstance(value, str | int):
            raise InvalidInput(f"{name} must be a string")
        optional[name] = None if value is None else str(value)
    item = ProfileInput(source, tuple(pairs), optional["source_id"], optional["profile_id"], attributes)
    check_profile_input(item, SNAKE_CASE)
    return item
