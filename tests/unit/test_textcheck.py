"""Strings of decoded JSON bodies: Unicode text passes, lone surrogates anywhere do not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.textcheck import decoded_is_unicode_text, is_unicode_text


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        1.5,
        True,
        "",
        "plain ascii",
        "Jöhn Dœ ☎ \U0001f600",
        json.loads('"\\ud83d\\ude00"'),  # an escaped surrogate pair is one character
        {"query": "{ strategy { name } }", "variables": {"input": {"attributes": {"név": ["ü", 1, None]}}}},
        [[], {}, [{}]],
    ],
)
def test_text_and_non_string_values_pass(value: object) -> None:
    assert is_unicode_text(value)


@pytest.mark.parametrize(
    "value",
    [
        "a\ud800b",
        "\udfff",
        "\udc00\ud800",  # a low surrogate before a high one is no pair
        {"variables": {"x": ["ok", "a\ud800"]}},
        {"variables": {"a\udc00": "value"}},  # in an object's key
        [1, [2, [3, ["\ud800"]]]],
        json.loads('{"x": "\\ud800"}'),
        json.loads(b'{"x": "\xed\xa0\x80"}'),  # UTF-8 bytes of a surrogate: json.loads decodes with surrogatepass
    ],
)
def test_a_lone_surrogate_anywhere_fails(value: object) -> None:
    assert not is_unicode_text(value)


def test_nesting_deeper_than_the_recursion_limit_is_walked() -> None:
    deep: object = "\ud800"
    for _ in range(100_000):
        deep = [deep]
    assert not is_unicode_text(deep)
    assert is_unicode_text([[[[["fine"]]]]] * 10)


# Text with surrogates, paired or not, often enough to matter.
TEXT = st.text(
    st.sampled_from(("a", "\u00e9", "\ud800", "\udc00", "\U0001f600")) | st.characters(exclude_categories=())
)
JSON_VALUES = st.recursive(
    TEXT | st.integers() | st.none(), lambda inner: st.lists(inner) | st.dictionaries(TEXT, inner), max_leaves=20
)


@given(JSON_VALUES)
def test_agrees_with_utf8_encoding_of_the_whole_value(value: object) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    assert is_unicode_text(value) is encodable


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "plain"}',
        '{"a": "J\u00f6hn"}',
        '{"a": "\\ud83d\\ude00"}',
        '{"a": "\\ud800"}',
        '{"\\udc00": 1}',
        '"x\\\\u"',
    ],
)
def test_the_escape_free_shortcut_agrees_with_the_walk(text: str) -> None:
    value = json.loads(text)
    assert decoded_is_unicode_text(text, value) == is_unicode_text(value)


@given(st.text())  # lone surrogates included
def test_the_shortcut_agrees_with_the_walk_on_any_line_read_as_utf8(text: str) -> None:
    for ensure_ascii in (True, False):
        try:
            raw = json.dumps({"v": text, text: [text]}, ensure_ascii=ensure_ascii).encode("utf-8")
        except UnicodeEncodeError:
            continue  # a lone surrogate written as itself is not UTF-8: no such line is ever read
        line = raw.decode("utf-8")
        value = json.loads(line)
        assert decoded_is_unicode_text(line, value) == is_unicode_text(value)
