"""[audit] keep_days: the strategy key, and the change log's trimming in bounded batches on the retention lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.bulk.audit import TrimReport, trim_change_log, trim_cutoff
from app.domain.retention import DEFAULT_KEEP_DAYS, AuditRetention
from app.domain.strategy import default_strategy, default_strategy_text, parse_strategy
from app.errors import InvalidStrategy

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_the_change_log_keeps_400_days_unless_audit_keep_days_says_otherwise() -> None:
    assert default_strategy().audit == AuditRetention(DEFAULT_KEEP_DAYS) == AuditRetention(400)
    assert parse_strategy(default_strategy_text() + "\n[audit]\nkeep_days = 30\n").audit == AuditRetention(30)
    assert parse_strategy(default_strategy_text() + "\n[audit]\n").audit == AuditRetention(400)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("keep_days = 0\n", "audit.keep_days: must be at least 1"),
        ('keep_days = "400"\n', "audit.keep_days: must be an integer"),
        ("keep_days = 1.5\n", "audit.keep_days: must be an integer"),
        ("keep = 3\n", "audit.keep: unknown key (expected one of: keep_days)"),
    ],
)
def test_a_bad_audit_section_is_refused_naming_the_key(section: str, message: str) -> None:
    with pytest.raises(InvalidStrategy) as caught:
        parse_strategy(default_strategy_text() + "\n[audit]\n" + section, origin="ops/strategy.toml")
    assert caught.value.message == f"ops/strategy.toml: {message}"


class Events:
    """A change log of `count` old events and a lease that `holder` holds for `batches_held` batches."""

    def __init__(self, count: int, holder: str = "r1", batches_held: int = 1000) -> None:
        self.count = count
        self.holder = holder
        self.batches_held = batches_held
        self.batches: list[int] = []

    async def trim_changes(self, replica: str, *, now: datetime, before: datetime, limit: int) -> int | None:
        if replica != self.holder or len(self.batches) >= self.batches_held:
            return None
        trimmed = min(limit, self.count)
        self.count -= trimmed
        self.batches.append(trimmed)
        return trimmed


async def test_trimming_goes_batch_by_batch_until_a_batch_is_not_whole() -> None:
    events = Events(2500)
    report = await trim_change_log(events, "r1", TrimReport(before=NOW), clock=lambda: NOW, batch=1000)
    assert events.batches == [1000, 1000, 500] and events.count == 0
    assert (report.trimmed, report.lease_lost) == (2500, False)


async def test_trimming_stops_when_the_lease_is_gone_and_reports_what_it_trimmed() -> None:
    events = Events(2500, batches_held=1)
    report = await trim_change_log(events, "r1", TrimReport(before=NOW), clock=lambda: NOW, batch=1000)
    assert (report.trimmed, report.lease_lost, events.count) == (1000, True, 1500)
    other = await trim_change_log(Events(10), "r2", TrimReport(before=NOW), clock=lambda: NOW)
    assert (other.trimmed, other.lease_lost) == (0, True)


def test_the_cutoff_is_keep_days_before_the_run() -> None:
    assert trim_cutoff(NOW, 400) == NOW - timedelta(days=400)
