"""Mapping of stored values: times as the hot read statements return them, profiles as property pairs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from neo4j.time import DateTime

from app.db.records import attribute_changes, attribute_properties, properties, to_datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_epoch_microseconds_give_back_the_same_time(moment: datetime) -> None:
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    assert to_datetime(micros) == moment


def test_driver_times_and_missing_times_map_as_before() -> None:
    moment = datetime(2026, 12, 1, 20, 28, 48, 722014, tzinfo=UTC)
    assert to_datetime(DateTime.from_native(moment)) == moment
    assert to_datetime(moment) == moment
    assert to_datetime(None) == EPOCH
    assert to_datetime(True) == EPOCH  # a bool is no count of microseconds


def test_properties_come_from_a_map_or_from_pairs() -> None:
    assert properties({"id": "p1"}) == {"id": "p1"}
    assert properties([["id", "p1"], ["attr.tier", "Gold"]]) == {"id": "p1", "attr.tier": "Gold"}


def test_attribute_changes_time_the_set_values_and_clear_the_removed_ones() -> None:
    props, timed = attribute_changes({"tier": "Gold", "lang": None})
    assert props == {"attr.tier": "Gold", "attr.lang": None, "attr_at.lang": None}
    assert timed == ["tier"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert attribute_properties({"tier": "Gold", "lang": None}, now) == {**props, "attr_at.tier": now}
