"""Outbound delivery of the change feed in `idgraph serve`: a background task that POSTs the change log's events to
IDGRAPH_CHANGE_WEBHOOK_URL in batches, in cursor order, at least once, on exactly one replica at a time.

The replicas share a lease in Neo4j (DeliveryStore; app/db/delivery.py), taken and renewed like automatic
retention's. Its holder reads the events after the delivered cursor, POSTs them as {"events": [...]} signed like the
inbound CRM webhook (app/signature.py), and on a 2xx answer moves the cursor past them in a transaction fenced by
the lease. A failed attempt (another status, a timeout, a refused connection) is retried after an exponential
backoff; after `max_attempts` the batch is parked (its cursor range, attempts and error class are stored) and the
cursor moves past it. A restart resumes from the stored cursor: what was sent and not yet recorded is sent again
(receivers deduplicate by cursor).

One replica at a time: before each attempt the holder renews the lease, and POSTs only when the attempt's bound
ends a third of a lease before the lease would expire; another replica can take the lease only once it expired.
Times come from each replica's clock: keep the clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.bulk.endpoint import batch_body
from app.bulk.retention import replica_id
from app.domain.changes import ChangeEvent
from app.domain.delivery import Delivery, DeliveryState, ParkedBatch, backoff_s, error_class, failure_kind
from app.domain.retention import Lease
from app.errors import AppError
from app.jsonshape import change_json
from app.services.ports import ChangeLog

logger = logging.getLogger(__name__)

STOP_WAIT_S = 10.0  # at shutdown: how long releasing the lease may take


class DeliveryStore(Protocol):
    """The lease, the delivered cursor and the parked batches (app/db/delivery.py implements it on Neo4j)."""

    async def acquire_lease(self, replica: str, *, now: datetime, expires_at: datetime) -> tuple[bool, Lease]: ...

    async def renew_lease(self, replica: str, *, expires_at: datetime) -> bool: ...

    async def release_lease(self, replica: str, *, now: datetime) -> bool: ...

    async def state(self) -> DeliveryState: ...

    async def advance(self, replica: str, *, now: datetime, seq: int) -> bool: ...

    async def park(self, replica: str, batch: ParkedBatch) -> bool: ...

    async def parked(self, batch: str | None = None) -> list[ParkedBatch]: ...

    async def settle(self, batch: ParkedBatch, *, error: str | None, now: datetime) -> bool: ...


class Endpoint(Protocol):
    """Where batches go (app/bulk/endpoint.py): POST a body, signed; the response's status."""

    async def post(self, body: bytes) -> int: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryMetrics:
    """The change delivery's counters and gauges, on the app's registry. The parked and lag gauges are read from the
    database by the replica holding the lease; the counters count what this process did."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "idgraph_change_webhook_delivered_events",
            "Change events this replica delivered to the change webhook (accepted with a 2xx).",
            registry=registry,
        )
        self.failed = Counter(
            "idgraph_change_webhook_failed_attempts",
            "Failed delivery attempts by kind (http_4xx, http_5xx, http_other, timeout, connection_refused, other).",
            ("kind",),
            registry=registry,
        )
        self.parked_now = Gauge(
            "idgraph_change_webhook_parked_batches",
            "Batches of change events parked after their attempts and not yet redelivered.",
            registry=registry,
        )
        self.parked = Counter(
            "idgraph_change_webhook_batches_parked", "Batches this replica parked.", registry=registry
        )
        self.lag = Gauge(
            "idgraph_change_webhook_cursor_lag",
            "The newest change event's cursor minus the delivered cursor.",
            registry=registry,
        )
        self.lease_held = Gauge(
            "idgraph_change_webhook_lease_held", "1 while this replica holds the delivery lease.", registry=registry
        )


@dataclass(frozen=True)
class Redelivery:
    """What `idgraph changes --redeliver` did with one parked batch."""

    batch: ParkedBatch
    delivered: bool
    error: str | None  # the error class of the failed attempt
    events: int  # how many of its events were sent (0: all trimmed from the log meanwhile)


class ChangeDeliverer:
    """Delivers the change log to the webhook while this replica holds the delivery lease."""

    def __init__(
        self,
        store: DeliveryStore,
        log: ChangeLog,
        endpoint: Endpoint,
        delivery: Delivery,
        *,
        replica: str | None = None,
        metrics: DeliveryMetrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.log = log
        self.endpoint = endpoint
        self.delivery = delivery
        self.replica = replica or replica_id()
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.lease = timedelta(seconds=delivery.lease_s)
        self.renew_every_s = delivery.lease_s / 3
        self._held_until: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the background task ------------------------------------------------------------------------------------

    def start(self) -> None:
        logger.info(
            "change delivery on: batches of %d, %d attempts, replica %s, lease %gs",
            self.delivery.batch_size,
            self.delivery.max_attempts,
            self.replica,
            self.delivery.lease_s,
        )
        self._task = asyncio.create_task(self._forever(), name="idgraph-change-delivery")

    async def stop(self) -> None:
        """Cancel the task (a batch in flight is sent again by the next holder) and release the lease if held."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._held_until is not None:
            try:
                async with asyncio.timeout(STOP_WAIT_S):
                    await self.store.release_lease(self.replica, now=self.clock())
            except (AppError, TimeoutError) as error:
                logger.warning("change delivery: could not release the lease: %s", _code(error))
            self._set_held(None)

    async def _forever(self) -> None:
        while True:
            try:
                wait_s = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the task must outlive any one failure; the log names the type only
                logger.warning("change delivery: tick failed: %s", _code(error))
                wait_s = min(self.delivery.poll_s, self.renew_every_s)
            await self.sleep(wait_s)

    # -- one step ------------------------------------------------------------------------------------------------

    async def tick(self) -> float:
        """Take or renew the lease; as its holder, deliver the next batch. Returns the seconds until the next tick."""
        if not await self._hold(take=True):
            return self.renew_every_s
        state = await self.store.state()
        events = await self.log.changes(after=state.delivered_seq, limit=self.delivery.batch_size)
        await self._show(state)
        if not events:
            return min(self.delivery.poll_s, self.renew_every_s)
        await self.deliver(events)
        return 0.0

    async def deliver(self, events: Sequence[ChangeEvent]) -> str:
        """Deliver one batch: "delivered", "parked", or "lost" (the lease went; the next holder sends it again)."""
        body = batch_body([change_json(e) for e in events])
        failures = 0
        while True:
            if not await self._hold(take=False):
                return "lost"
            error = await self._attempt(body)
            if error is None:
                if await self.store.advance(self.replica, now=self.clock(), seq=events[-1].seq):
                    if self.metrics is not None:
                        self.metrics.delivered.inc(len(events))
                    return "delivered"
                logger.warning("change delivery: lease lost before the cursor moved; the batch will be sent again")
                self._set_held(None)
                return "lost"
            failures += 1
            if self.metrics is not None:
                self.metrics.failed.labels(failure_kind(error)).inc()
            if failures >= self.delivery.max_attempts:
                return await self._park(events, failures, error)
            wait_s = backoff_s(failures, self.delivery.backoff_s, self.delivery.backoff_cap_s)
            logger.warning(
                "change delivery: batch %s-%s attempt %d failed (%s); next in %.3gs",
                events[0].cursor,
                events[-1].cursor,
                failures,
                error,
                wait_s,
            )
            if not await self._wait(wait_s):
                return "lost"

    async def _attempt(self, body: bytes) -> str | None:
        """One POST; None when the receiver accepted it (2xx), else the error class."""
        try:
            status = await self.endpoint.post(body)
        except Exception as error:  # any failure of the POST is a failed attempt: backed off, counted, parked
            return error_class(None, error)
        return None if 200 <= status < 300 else error_class(status, None)

    async def _park(self, events: Sequence[ChangeEvent], attempts: int, error: str) -> str:
        batch = ParkedBatch(events[0].seq, events[-1].seq, len(events), attempts, error, self.clock())
        if not await self.store.park(self.replica, batch):
            self._set_held(None)
            return "lost"
        logger.warning("change delivery: batch %s parked after %d attempts (%s)", batch.id, attempts, error)
        if self.metrics is not None:
            self.metrics.parked.inc()
        return "parked"

    async def _hold(self, *, take: bool) -> bool:
        """Take (`take`) or renew the lease; True when this replica holds it long enough for one more attempt: the
        attempt's bound must end a third of a lease before the lease expires."""
        now = self.clock()
        try:
            if take:
                held, _ = await self.store.acquire_lease(self.replica, now=now, expires_at=now + self.lease)
            else:
                held = await self.store.renew_lease(self.replica, expires_at=now + self.lease)
        except AppError as error:
            logger.warning("change delivery: lease not checked: %s", error.code)
            held = False
        if not held:
            self._set_held(None)
            return False
        self._set_held(now + self.lease)
        margin = timedelta(seconds=self.delivery.timeout_s + self.renew_every_s)
        return self.clock() + margin < now + self.lease

    async def _wait(self, seconds: float) -> bool:
        """Sleep `seconds`, renewing the lease every third of it; False when it is lost meanwhile."""
        remaining = seconds
        while remaining > 0:
            step = min(remaining, self.renew_every_s)
            await self.sleep(step)
            remaining -= step
            if remaining > 0 and not await self._hold(take=False):
                return False
        return True

    async def _show(self, state: DeliveryState) -> None:
        if self.metrics is None:
            return
        self.metrics.parked_now.set(state.parked)
        self.metrics.lag.set(max(0, await self.log.last_change() - state.delivered_seq))

    def _set_held(self, until: datetime | None) -> None:
        self._held_until = until
        if self.metrics is not None:
            self.metrics.lease_held.set(0 if until is None else 1)
            if until is None:
                self.metrics.lag.set(0)  # the holder reports the lag: a max over the replicas is the lag


async def redeliver(
    store: DeliveryStore, log: ChangeLog, endpoint: Endpoint, batches: Sequence[ParkedBatch], *, now: datetime
) -> list[Redelivery]:
    """Send each parked batch once more, in cursor order: delivered ones are removed, failed ones count one more
    attempt. A batch whose events are all gone (trimmed by [audit] keep_days) is removed as delivered, with 0 events.
    Not fenced by the lease: a receiver may get it beside the live feed, and deduplicates by cursor."""
    done: list[Redelivery] = []
    for batch in sorted(batches, key=lambda b: b.first_seq):
        events = [
            e for e in await log.changes(after=batch.first_seq - 1, limit=batch.events) if e.seq <= batch.last_seq
        ]
        error: str | None = None
        if events:
            try:
                status = await endpoint.post(batch_body([change_json(e) for e in events]))
                error = None if 200 <= status < 300 else error_class(status, None)
            except Exception as failure:  # as _attempt: every failure is recorded against the batch
                error = error_class(None, failure)
        await store.settle(batch, error=error, now=now)
        done.append(Redelivery(batch, delivered=error is None, error=error, events=len(events)))
    return done


def _code(error: BaseException) -> str:
    """What a log line may say about an error: its code, or its type; never its message (it may hold data)."""
    return error.code if isinstance(error, AppError) else type(error).__name__
