"""The change feed: pages of the change log (app/domain/changes.py) for pollers, and a customer's history.

A poller keeps the page's `next_cursor` and passes it back as `after`: the last event's cursor, or, when the page
is empty, the `after` it gave (so it keeps its place). `next_cursor` is None only when the page is empty and no
`after` was given: nothing to read yet, so the next poll starts from the beginning again, as it would with None.
Events are in cursor order, and cursor order is commit order, so a poller paging this way never skips an event.

Reads the ChangeLog port only; GraphQL (`changes`, `customerHistory`), REST and `idgraph changes` call it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.domain.changes import ChangeEvent, ChangeType, cursor_of, parse_cursor
from app.domain.validation import check_id
from app.errors import InvalidInput
from app.services.ports import ChangeLog

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_HISTORY_LIMIT = 50

# What the inspector's history of a customer shows unless asked for other types: how it came to be this customer.
HISTORY_TYPES = frozenset(
    {
        ChangeType.MERGE,
        ChangeType.UNMERGE,
        ChangeType.IDENTITY_LINKED,
        ChangeType.IDENTITY_UNLINKED,
        ChangeType.IDENTITY_SATURATED,
        ChangeType.IDENTITY_RELEASED,
        ChangeType.CUSTOMER_ERASED,
        ChangeType.PROFILE_ERASED,
        ChangeType.RETENTION_PURGE,
    }
)

# A history reads the log from the newest events back: first the last HISTORY_SPAN cursors, then a span this many
# times wider, until it holds `limit` events or has read from the start. Pages of MAX_LIMIT events each.
HISTORY_SPAN = 4 * MAX_LIMIT
HISTORY_WIDEN = 8


@dataclass(frozen=True)
class ChangePage:
    events: tuple[ChangeEvent, ...]
    next_cursor: str | None  # None only for an empty page read without `after`


def check_limit(limit: int, name: str = "limit") -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"{name} must be a whole number from 1 to {MAX_LIMIT} (got {limit!r})")
    return limit


def change_types(names: Iterable[str], name: str = "types") -> frozenset[ChangeType]:
    """Type names as given on a command line or a query string; INVALID_INPUT names the first unknown one."""
    found: set[ChangeType] = set()
    for item in names:
        try:
            found.add(ChangeType(item.strip().upper()))
        except ValueError:
            known = ", ".join(t.value for t in ChangeType)
            raise InvalidInput(f"{name}: {item!r} is not a change type; known: {known}") from None
    return frozenset(found)


class ChangeFeed:
    def __init__(self, log: ChangeLog) -> None:
        self.log = log

    async def page(
        self,
        *,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
        types: Iterable[ChangeType] | None = None,
        profile_id: str | None = None,
        profile_id_name: str = "profileId",
    ) -> ChangePage:
        """Up to `limit` events after the cursor `after`, oldest first; only `types` (None or empty: every type),
        only events naming `profile_id`. INVALID_INPUT for a limit outside 1..1000 or a cursor this feed did not
        give."""
        check_limit(limit)
        seq = parse_cursor(after)
        if profile_id is not None:
            check_id(profile_id, profile_id_name)
        wanted = frozenset(types) if types else None
        # A filtered read may pass many events it does not keep: it reads the log's head first and, when the page
        # is not full, moves the cursor there, so a poller does not scan the same unkept events again each time.
        head = await self.log.last_change() if wanted is not None or profile_id is not None else None
        events = await self.log.changes(
            after=seq,
            limit=limit,
            types=wanted,
            profile_ids=None if profile_id is None else [profile_id],
            through=head,
        )
        if head is not None and len(events) < limit and head > seq:
            return ChangePage(tuple(events), cursor_of(head))
        if events:
            return ChangePage(tuple(events), events[-1].cursor)
        return ChangePage((), None if after is None or after == "" else cursor_of(seq))

    async def history(
        self,
        customer_id: str,
        profile_ids: Sequence[str],
        *,
        limit: int = DEFAULT_HISTORY_LIMIT,
        types: Iterable[ChangeType] | None = None,
    ) -> list[ChangeEvent]:
        """The newest `limit` events of a customer, newest first: those naming one of its profiles, or with it as
        the customer before or after (which finds the erasures and unmerges of profiles it no longer holds).
        `types`: None or empty is HISTORY_TYPES."""
        check_limit(limit)
        wanted = frozenset(types) if types else HISTORY_TYPES
        last = await self.log.last_change()
        span = HISTORY_SPAN
        while True:
            start = max(0, last - span)
            newest = await self._tail(start, limit, wanted, profile_ids, customer_id)
            if len(newest) >= limit or start == 0:
                return list(reversed(newest))
            span *= HISTORY_WIDEN

    async def _tail(
        self,
        after: int,
        limit: int,
        types: frozenset[ChangeType],
        profile_ids: Sequence[str],
        customer_id: str,
    ) -> deque[ChangeEvent]:
        """The last `limit` matching events after `after`, oldest first, read page by page to the end."""
        kept: deque[ChangeEvent] = deque(maxlen=limit)
        while True:
            page = await self.log.changes(
                after=after, limit=MAX_LIMIT, types=types, profile_ids=list(profile_ids), customer_id=customer_id
            )
            kept.extend(page)
            if len(page) < MAX_LIMIT:
                return kept
            after = page[-1].seq
