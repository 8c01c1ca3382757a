"""Whether a decoded JSON request body holds only Unicode text.

JSON lets a string carry a lone surrogate (the escape "\\ud800" without its pair), and Python's json module decodes it
into a str that UTF-8 cannot encode: the Neo4j driver would fail on it mid-request. The HTTP boundaries (the GraphQL
view, the REST API) refuse such bodies as INVALID_INPUT before anything else reads them.
"""

from __future__ import annotations


def decoded_is_unicode_text(text: str, value: object) -> bool:
    """is_unicode_text(value) for the value json.loads made of `text`, a str decoded from UTF-8, without walking it
    when `text` has no "\\u" escape: such a str holds no lone surrogate, so only an escape can put one into the value
    (the bulk path reads a million lines)."""
    return "\\u" not in text or is_unicode_text(value)


def is_unicode_text(value: object) -> bool:
    """True when every string in a decoded JSON value, object keys included, can be encoded as UTF-8.

    Walks the value with a stack, not recursion: json.loads accepts nesting close to the interpreter's recursion
    limit, so a recursive walk of a body it accepted could still fail."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _encodable(text: str) -> bool:
    if text.isascii():  # nearly every string of a request: no encoding attempt needed
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
