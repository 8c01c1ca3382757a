"""Deterministic synthetic CRM/IVR/chat profiles with the format variety real contact-centre data has.

Each record is the JSON Lines shape of `idgraph ingest`: {"source", "source_id", "identities", "attributes"}.
People have one to three records across sources; some share a household phone; a few switchboard numbers are
shared by very many records; some values are junk (blocked or impossible).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

SOURCES = ("crm", "ivr", "webchat", "email")
AREA_CODES = (212, 303, 312, 415, 512, 617, 646, 702, 919, 206)
SWITCHBOARDS = ("+1 800 555 0100", "+1 888 555 0142")
JUNK = (
    ("phone_number", "0000000000"),
    ("phone_number", "N/A"),
    ("email_address", "test@example.com"),
    ("email_address", "none"),
    ("phone_number", "12"),
)
DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example")
TIERS = ("Platinum", "Gold", "Silver", None)


def phone_digits(rng: random.Random) -> tuple[int, int, int]:
    return rng.choice(AREA_CODES), rng.randrange(200, 1000), rng.randrange(10000)


def spell_phone(area: int, exchange: int, line: int, rng: random.Random) -> str:
    style = rng.randrange(8)
    return (
        f"+1{area}{exchange}{line:04d}",
        f"+1 {area} {exchange} {line:04d}",
        f"({area}) {exchange}-{line:04d}",
        f"{area}.{exchange}.{line:04d}",
        f"1-{area}-{exchange}-{line:04d}",
        f"tel:+1-{area}-{exchange}-{line:04d}",
        f"{area}-{exchange}-{line:04d} x{rng.randrange(10, 999)}",
        f"001 {area} {exchange} {line:04d}",
    )[style]


def spell_email(local: str, domain: str, rng: random.Random) -> str:
    address = f"{local}@{domain}"
    if rng.random() < 0.3:
        address = address.title()
    if rng.random() < 0.2:
        address = f"  {address} "
    return address


def records(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`count` records; about 0.5% carry a switchboard number, 2% a household phone, 3% a junk value."""
    rng = random.Random(seed)
    made = 0
    person = 0
    last_household: tuple[int, int, int] | None = None
    while made < count:
        person += 1
        phone = phone_digits(rng)
        if last_household is not None and rng.random() < 0.02:
            phone = last_household  # a second person in the same household
        last_household = phone
        local = f"p{person}.{rng.randrange(10**6)}"
        domain = rng.choice(DOMAINS)
        account = f"ACCT-{person:08d}" if rng.random() < 0.4 else None
        tier = rng.choice(TIERS)
        for copy in range(rng.choice((1, 1, 2, 3))):
            if made >= count:
                break
            source = SOURCES[copy % len(SOURCES)] if copy else rng.choice(SOURCES)
            identities: list[dict[str, str]] = []
            if source != "email" or rng.random() < 0.3:
                identities.append({"key": "phone_number", "value": spell_phone(*phone, rng)})
            if source != "ivr" or rng.random() < 0.2:
                identities.append({"key": "email_address", "value": spell_email(local, domain, rng)})
            if account and (source == "crm" or rng.random() < 0.2):
                identities.append({"key": "account_id", "value": account})
            if rng.random() < 0.005:
                identities.append({"key": "phone_number", "value": rng.choice(SWITCHBOARDS)})
            if rng.random() < 0.03:
                key, value = rng.choice(JUNK)
                identities.append({"key": key, "value": value})
            attributes: dict[str, Any] = {}
            if tier is not None and source == "crm":
                attributes["tier"] = tier
            if rng.random() < 0.1:
                attributes["last_order_date"] = f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d}"
            yield {
                "source": source,
                "source_id": f"{source}-{person}-{copy}",
                "identities": identities,
                "attributes": attributes,
            }
            made += 1


def sharing(count: int, value: str, key: str = "phone_number", tag: str = "hub") -> Iterator[dict[str, Any]]:
    """`count` records that all carry one identity value (a switchboard, a shared test address), each besides it
    an email address of its own: the identity is held by `count` profiles."""
    for n in range(count):
        yield {
            "source": "ivr",
            "source_id": f"{tag}-{n}",
            "identities": [{"key": key, "value": value}, {"key": "email_address", "value": f"{tag}.{n}@example.net"}],
            "attributes": {},
        }
