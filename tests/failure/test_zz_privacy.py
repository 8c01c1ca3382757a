"""Last module of the failure suite (pytest runs a directory's modules in name order): nothing the suite logged, in
this process or in the `idgraph serve`, ingest and database processes it started, holds a phone number, an email
address or any raw identity value the tests sent."""

from __future__ import annotations

import pytest

from tests.failure import privacy

pytestmark = pytest.mark.failure


def test_no_log_of_the_failure_suite_holds_a_raw_identity_value(privacy_watch: privacy.PrivacyWatch) -> None:
    privacy.mark_checked()
    assert privacy.current() is privacy_watch, "the privacy watch is not installed"
    found = privacy_watch.findings()
    assert not found, privacy_watch.report()


def test_the_watch_finds_phone_numbers_emails_and_sent_values_and_nothing_else() -> None:
    watch = privacy.PrivacyWatch()
    clean = [
        "2026-11-28 12:50:03,194 INFO idgraph.access method=POST route=/graphql status=200 duration_ms=1614.32 "
        "request_id=7b4a0a553f0f41dbbdcc963abbef7dc0 operation=resolve outcome=DATABASE_UNAVAILABLE",
        "upserted 1 profiles (0 created) 8f2c1a9e-4b1d-4e7a-9c3f-2a6b8d0e1f47",
        "Uvicorn running on http://127.0.0.1:45123 (Press CTRL+C to quit)",
        "batch 12 acknowledged: 200 stored, 0 refused; 1,234,567 records in 0:01:02",
    ]
    leaks = [
        "caller +14155550123 not found",
        "caller (415) 555-0123",
        "caller 415-555-0123",
        "caller 1-415-555-0123",
        "caller 415.555.0123",
        "caller +1 415 555 0123",
        "mail from John.Doe+x@Example.co.uk",
        "account ACCT-SECRET-77",
    ]
    watch.remember(["ACCT-SECRET-77"])
    for line in clean + leaks:
        watch.add_record(line)
    found = {f.where for f in watch.findings(limit=100)}
    assert found == {f"log record {n}" for n in range(len(clean), len(clean) + len(leaks))}
