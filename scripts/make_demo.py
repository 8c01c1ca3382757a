"""Writes the demo data set, app/demo/demo.jsonl: deterministic, so the committed file can be checked against it.

    .venv/bin/python scripts/make_demo.py            # rewrite app/demo/demo.jsonl
    .venv/bin/python scripts/make_demo.py --check    # exit 1 when the committed file is not what this writes

The reference customer of the contact-centre guide (+14155552671, john.doe@example.com, ACCT-98765, tier Platinum)
seen through three doors, the "unnormalized duplicates" trap (one number spelled two ways by two systems), then a
few hundred generated profiles across crm / ivr / webchat / email (bench/datagen.py: phone and email spellings of
every kind, households sharing a phone, switchboard numbers, junk values).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datagen import records  # noqa: E402

DEMO_FILE = ROOT / "app" / "demo" / "demo.jsonl"
GENERATED = 300
SEED = 2026

REFERENCE: list[dict[str, Any]] = [
    {
        "source": "crm",
        "source_id": "CRM-000001",
        "identities": [
            {"key": "phone_number", "value": "+14155552671"},
            {"key": "email_address", "value": "john.doe@example.com"},
            {"key": "account_id", "value": "ACCT-98765"},
        ],
        "attributes": {
            "first_name": "John",
            "last_name": "Doe",
            "tier": "Platinum",
            "last_order_date": "2023-10-15T14:30:00Z",
        },
    },
    {  # the IVR heard the same number, written its own way
        "source": "ivr",
        "source_id": "CALL-000001",
        "identities": [{"key": "phone_number", "value": "(415) 555-2671"}],
        "attributes": {"last_call_reason": "order status"},
    },
    {  # the web chat knows the email, typed with capitals
        "source": "webchat",
        "source_id": "CHAT-000001",
        "identities": [{"key": "email_address", "value": "John.Doe@Example.com"}],
        "attributes": {"channel": "web"},
    },
    {  # the trap: the CRM writes 1-800-555-0199, the IVR +18005550199; normalized, they are one customer
        "source": "crm",
        "source_id": "CRM-000002",
        "identities": [
            {"key": "phone_number", "value": "1-800-555-0199"},
            {"key": "email_address", "value": "jane.roe@example.org"},
        ],
        "attributes": {"first_name": "Jane", "last_name": "Roe", "tier": "Gold"},
    },
    {
        "source": "ivr",
        "source_id": "CALL-000002",
        "identities": [{"key": "phone_number", "value": "+18005550199"}],
        "attributes": {},
    },
]

_RESERVED = {"4155552671", "john.doe@example.com", "acct-98765", "8005550199", "jane.roe@example.org"}


def _clashes(record: dict[str, Any]) -> bool:
    for identity in record["identities"]:
        text = identity["value"].strip().lower()
        digits = "".join(ch for ch in text if ch.isdigit())
        if text in _RESERVED or any(r in digits for r in _RESERVED if r.isdigit()):
            return True
    return False


def demo_records() -> Iterator[dict[str, Any]]:
    yield from REFERENCE
    yield from (r for r in records(GENERATED, seed=SEED) if not _clashes(r))


def demo_text() -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in demo_records())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the committed file is current")
    args = parser.parse_args()
    text = demo_text()
    if args.check:
        current = DEMO_FILE.read_text(encoding="utf-8") if DEMO_FILE.exists() else ""
        if current != text:
            print(f"{DEMO_FILE.relative_to(ROOT)} is stale: run scripts/make_demo.py", file=sys.stderr)
            return 1
        return 0
    DEMO_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} profiles to {DEMO_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
