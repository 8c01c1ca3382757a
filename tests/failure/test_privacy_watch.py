"""The privacy watch itself: it is in force for the whole session, and it finds what it must and nothing else.

The check of what the suite logged runs in the plugin's pytest_sessionfinish (tests/failure/privacy.py), after every
test and every fixture's teardown, so it does not depend on the order or the selection of the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.failure import privacy

pytestmark = pytest.mark.failure


def test_the_whole_suite_watch_is_installed_and_checked_when_the_session_finishes(
    request: pytest.FixtureRequest, privacy_watch: privacy.PrivacyWatch
) -> None:
    plugin = request.config.pluginmanager.get_plugin("tests.failure.privacy")
    assert plugin is privacy, "tests/conftest.py must load tests.failure.privacy as a plugin"
    assert privacy.current() is privacy_watch, "the failure suite must feed the session's watch"
    assert plugin.pytest_sessionfinish in [i.function for i in request.config.hook.pytest_sessionfinish.get_hookimpls()]


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


def test_a_file_registered_with_the_watch_is_read_when_it_is_checked(tmp_path: Path) -> None:
    watch = privacy.PrivacyWatch()
    log = watch.watch_file(tmp_path / "child.log")  # registered before the child writes it, as the helpers do
    log.write_text("started\nresolve for caller +14155550123\n", encoding="utf-8")
    assert [(f.where, f.what) for f in watch.findings()] == [("child.log:2", "a phone number")]
