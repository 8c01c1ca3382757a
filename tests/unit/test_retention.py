"""The strategy's [retention] section, intervals, the schedule rule and the `purge --status` output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.cli.retention_status import lease_line, run_lines, status_json
from app.domain.retention import (
    DEFAULT_INTERVAL,
    IntervalRefused,
    Lease,
    Retention,
    RetentionRun,
    RunStatus,
    format_interval,
    is_due,
    parse_interval,
)
from app.domain.strategy import default_strategy, default_strategy_text, parse_strategy
from app.errors import InvalidStrategy

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def with_retention(section: str) -> str:
    return default_strategy_text() + "\n[retention]\n" + section


def refusal(text: str) -> str:
    with pytest.raises(InvalidStrategy) as caught:
        parse_strategy(text, origin="ops/strategy.toml")
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("6h", timedelta(hours=6)),
        ("1d", timedelta(days=1)),
        ("24h", timedelta(days=1)),
        (" 90m ", timedelta(minutes=90)),
    ],
)
def test_intervals_are_a_whole_number_and_one_unit(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "0h", "-1h", "1.5h", "1w", "1H", "1 h", "1h30m", "P1D", "01h"])
def test_other_interval_forms_are_refused(text: str) -> None:
    with pytest.raises(IntervalRefused):
        parse_interval(text)


@pytest.mark.parametrize(("seconds", "shown"), [(86400, "1d"), (5400, "90m"), (7200, "2h"), (45, "45s")])
def test_an_interval_is_shown_in_its_largest_exact_unit(seconds: int, shown: str) -> None:
    assert format_interval(timedelta(seconds=seconds)) == shown
    assert parse_interval(shown) == timedelta(seconds=seconds)


def test_retention_is_off_in_the_packaged_default() -> None:
    assert default_strategy().retention is None


def test_retention_runs_daily_unless_an_interval_is_given() -> None:
    assert parse_strategy(with_retention("inactive_days = 400\n")).retention == Retention(400, DEFAULT_INTERVAL)
    strategy = parse_strategy(with_retention('inactive_days = 30\ninterval = "6h"\n'))
    assert strategy.retention == Retention(30, timedelta(hours=6))


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ('interval = "1d"\n', "retention.inactive_days: required key is missing"),
        ("inactive_days = 0\n", "retention.inactive_days: must be at least 1"),
        ('inactive_days = "30"\n', "retention.inactive_days: must be an integer"),
        ("inactive_days = true\n", "retention.inactive_days: must be an integer"),
        ('inactive_days = 30\ninterval = "1w"\n', "retention.interval: '1w' must be a whole number"),
        ("inactive_days = 30\ninterval = 24\n", "retention.interval: must be a string"),
        ("inactive_days = 30\nkeep = 3\n", "retention.keep: unknown key"),
    ],
)
def test_a_bad_retention_section_is_refused_naming_the_key(section: str, path: str) -> None:
    assert f"ops/strategy.toml: {path}" in refusal(with_retention(section))


def test_retention_must_be_a_table() -> None:
    text = default_strategy_text().replace('name = "Deterministic', 'retention = 30\nname = "Deterministic', 1)
    assert "ops/strategy.toml: retention: must be a table" in refusal(text)


def test_a_run_is_due_an_interval_after_the_last_start_and_not_before() -> None:
    hour = timedelta(hours=1)
    assert is_due(None, NOW, hour)
    assert is_due(NOW - hour, NOW, hour)
    assert not is_due(NOW - hour + timedelta(seconds=1), NOW, hour)
    assert not is_due(NOW + timedelta(minutes=5), NOW, hour)  # a replica whose clock is behind waits


def test_a_lease_is_held_only_by_its_holder_and_only_until_it_expires() -> None:
    lease = Lease("a", NOW + timedelta(seconds=5), None)
    assert lease.held_by("a", NOW)
    assert not lease.held_by("b", NOW)
    assert not lease.held_by("a", NOW + timedelta(seconds=5))
    assert not Lease(None, None, None).held_by("a", NOW)


def test_the_status_shows_runs_and_the_holder_without_anything_else() -> None:
    run = RetentionRun(
        "retention:x",
        "host:12:abcdef",
        NOW,
        30,
        RunStatus.COMPLETED,
        finished_at=NOW + timedelta(seconds=3),
        candidates=5,
        profiles_deleted=4,
        identities_deleted=7,
        failed=1,
        changes_trimmed=12,
    )
    lines = run_lines([run])
    assert lines[0].split()[:3] == ["started", "finished", "status"]
    assert lines[1].split() == [
        "2026-11-20T12:00:00+00:00",
        "2026-11-20T12:00:03+00:00",
        "COMPLETED",
        "30",
        "5",
        "4",
        "7",
        "1",
        "12",
        "host:12:abcdef",
    ]
    held = Lease("host:12:abcdef", NOW + timedelta(minutes=5), NOW)
    assert lease_line(held, NOW).startswith("lease: held by host:12:abcdef until 2026-11-20T12:05:00+00:00")
    assert lease_line(held, NOW + timedelta(minutes=6)).startswith("lease: free")
    assert run_lines([]) == ["no automatic retention run recorded"]
    shown = status_json(held, [run], NOW)
    assert shown["lease"] == {
        "holder": "host:12:abcdef",
        "expires_at": "2026-11-20T12:05:00.000000Z",
        "last_run_started_at": "2026-11-20T12:00:00.000000Z",
        "changes_trimmed": 0,
        "changes_trimmed_at": None,
    }
    assert shown["runs"] == [
        {
            "id": "retention:x",
            "replica": "host:12:abcdef",
            "status": "COMPLETED",
            "started_at": "2026-11-20T12:00:00.000000Z",
            "finished_at": "2026-11-20T12:00:03.000000Z",
            "inactive_days": 30,
            "candidates": 5,
            "profiles_deleted": 4,
            "identities_deleted": 7,
            "failed": 1,
            "error": None,
            "changes_trimmed": 12,
        }
    ]
