"""The change feed use case (app/services/changes.py) on an in-memory change log with the port's semantics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from app.domain.changes import Audit, ChangeEvent, ChangeType
from app.errors import InvalidInput
from app.services.changes import HISTORY_SPAN, MAX_LIMIT, ChangeFeed, change_types
from tests.unit.fake_changes import Draft, FakeChangeLog

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class ListLog(FakeChangeLog):
    """The in-memory repository's change log (tests/unit/fake_changes.py), events added directly, reads counted."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def add(
        self,
        type: ChangeType,
        profile_ids: Sequence[str] = ("p1",),
        *,
        before: str | None = None,
        after: str | None = None,
    ) -> ChangeEvent:
        self.record([Draft(type, tuple(profile_ids), before, after)], Audit("steward"), T0)
        return self.events[-1]

    async def changes(
        self,
        *,
        after: int,
        limit: int,
        types: frozenset[ChangeType] | None = None,
        profile_ids: Sequence[str] | None = None,
        customer_id: str | None = None,
        through: int | None = None,
    ) -> list[ChangeEvent]:
        self.calls += 1
        return await super().changes(
            after=after, limit=limit, types=types, profile_ids=profile_ids, customer_id=customer_id, through=through
        )


@pytest.fixture
def log() -> ListLog:
    return ListLog()


@pytest.fixture
def feed(log: ListLog) -> ChangeFeed:
    return ChangeFeed(log)


async def test_a_poller_paging_by_next_cursor_reads_every_event_once_in_order(log: ListLog, feed: ChangeFeed) -> None:
    for n in range(7):
        log.add(ChangeType.PROFILE_CREATED, [f"p{n}"])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = await feed.page(after=cursor, limit=3)
        seen += [e.cursor for e in page.events]
        cursor = page.next_cursor
    assert seen == [str(n) for n in range(1, 8)]
    assert cursor == "7"


async def test_an_empty_page_keeps_the_pollers_place(log: ListLog, feed: ChangeFeed) -> None:
    log.add(ChangeType.MERGE, ["a", "b"])
    page = await feed.page(after="1")
    assert page.events == () and page.next_cursor == "1"
    log.add(ChangeType.UNMERGE, ["a", "b"])
    page = await feed.page(after=page.next_cursor)
    assert [e.type for e in page.events] == [ChangeType.UNMERGE] and page.next_cursor == "2"


async def test_next_cursor_is_null_only_for_an_empty_page_read_from_the_start(feed: ChangeFeed) -> None:
    assert (await feed.page()).next_cursor is None
    assert (await feed.page(after="")).next_cursor is None
    assert (await feed.page(after="0")).next_cursor == "0"


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
async def test_a_limit_outside_1_to_1000_is_refused_naming_limit(feed: ChangeFeed, limit: int) -> None:
    with pytest.raises(InvalidInput, match=r"^limit must be a whole number from 1 to 1000"):
        await feed.page(limit=limit)


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "1" * 20, "9" * 19, "١٢"])
async def test_a_cursor_the_feed_did_not_give_is_refused_naming_after(feed: ChangeFeed, after: str) -> None:
    with pytest.raises(InvalidInput, match=r"^after is not a cursor"):
        await feed.page(after=after)


async def test_types_and_profile_id_filter_the_page(log: ListLog, feed: ChangeFeed) -> None:
    log.add(ChangeType.PROFILE_CREATED, ["a"])
    log.add(ChangeType.MERGE, ["a", "b"])
    log.add(ChangeType.MERGE, ["c", "d"])
    merges = await feed.page(types=[ChangeType.MERGE])
    assert [e.seq for e in merges.events] == [2, 3]
    of_a = await feed.page(profile_id="a")
    assert [e.seq for e in of_a.events] == [1, 2]
    with pytest.raises(InvalidInput, match=r"^profile_id must be"):
        await feed.page(profile_id="not an id!", profile_id_name="profile_id")


async def test_a_filtered_poller_moves_past_the_events_it_does_not_keep(log: ListLog, feed: ChangeFeed) -> None:
    """Polling for merges over a log of other events: the cursor goes to the log's head, not the last merge, so the
    next poll does not read the same profile events again; a merge written later is still found."""
    log.add(ChangeType.MERGE, ["a", "b"])
    for _ in range(5):
        log.add(ChangeType.PROFILE_CREATED, ["c"])
    page = await feed.page(types=[ChangeType.MERGE])
    assert [e.seq for e in page.events] == [1] and page.next_cursor == "6"
    empty = await feed.page(after=page.next_cursor, types=[ChangeType.MERGE])
    assert empty.events == () and empty.next_cursor == "6"
    log.add(ChangeType.PROFILE_CREATED, ["c"])
    log.add(ChangeType.MERGE, ["d", "e"])
    later = await feed.page(after=empty.next_cursor, types=[ChangeType.MERGE])
    assert [e.seq for e in later.events] == [8] and later.next_cursor == "8"
    full = await feed.page(types=[ChangeType.PROFILE_CREATED], limit=2)  # a full page: its last event's cursor
    assert [e.seq for e in full.events] == [2, 3] and full.next_cursor == "3"


def test_type_names_are_read_case_insensitively_and_an_unknown_one_is_named() -> None:
    assert change_types(["merge", " UNMERGE "]) == {ChangeType.MERGE, ChangeType.UNMERGE}
    with pytest.raises(InvalidInput, match="--type: 'MERGED' is not a change type"):
        change_types(["MERGED"], "--type")


async def test_history_is_newest_first_by_profile_or_customer_and_of_history_types(
    log: ListLog, feed: ChangeFeed
) -> None:
    log.add(ChangeType.PROFILE_CREATED, ["p1"], after="p1")  # not a history type
    merge = log.add(ChangeType.MERGE, ["p2", "p1"], before="p2", after="p1")
    log.add(ChangeType.MERGE, ["x", "y"], before="x", after="y")  # another customer
    erased = log.add(ChangeType.PROFILE_ERASED, ["p3"], before="p1", after="p1")  # a former profile, by customer
    unlinked = log.add(ChangeType.IDENTITY_UNLINKED, ["p2"])
    history = await feed.history("p1", ["p1", "p2"])
    assert history == [unlinked, erased, merge]
    assert await feed.history("p1", ["p1"], types=[ChangeType.PROFILE_CREATED]) == [log.events[0]]


async def test_history_finds_the_newest_events_of_a_long_log_without_reading_it_all(
    log: ListLog, feed: ChangeFeed
) -> None:
    old = log.add(ChangeType.MERGE, ["p1", "p0"], after="p0")
    for n in range(3 * HISTORY_SPAN):
        log.add(ChangeType.PROFILE_CREATED, [f"q{n}"])
    recent = [log.add(ChangeType.MERGE, [f"s{n}", "p0"], after="p0") for n in range(3)]
    log.calls = 0
    assert await feed.history("p0", ["p0"], limit=3) == recent[::-1]
    assert log.calls == 1  # the first span held them
    assert await feed.history("p0", ["p0"], limit=4) == [*recent[::-1], old]  # widened back to the start
