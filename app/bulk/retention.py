"""Automatic retention in `idgraph serve`: a background task that runs the retention purge every `interval`, on
exactly one replica at a time, and trims the change log to [audit] keep_days in the same run (app/bulk/audit.py).
Without [retention] the task still runs, daily, and only trims the change log (keep_days defaults to 400).

The replicas share a lease stored in Neo4j (RetentionStore; app/db/retention.py). Every replica tries to take it
every third of its length; the holder renews it the same way and starts a run when the last run, by whichever
replica, started at least `interval` ago (the start is recorded with the lease, in the transaction that checks
it, and renews it). A run renews the lease every third of its length and stops, recorded ABANDONED, when a
renewal fails or finds the lease taken, or has not succeeded a third of a lease before it would expire: so the
holder has stopped before another replica can take the lease. A holder that dies stops renewing; another replica
takes the lease once it has expired, and marks the dead holder's unfinished run ABANDONED. Shutdown releases the
lease. Times come from each replica's clock: keep the clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.bulk.audit import ChangeTrimmer, TrimReport, trim_change_log, trim_cutoff
from app.bulk.purge import PurgeReport, purge
from app.domain.retention import (
    DEFAULT_INTERVAL,
    RETENTION_ACTOR,
    AuditRetention,
    Lease,
    Retention,
    RetentionRun,
    RunStatus,
    format_interval,
    is_due,
)
from app.errors import AppError
from app.services.identity import IdentityService
from app.services.ports import MaintenanceStore

logger = logging.getLogger(__name__)

LEASE_LOST = "LEASE_LOST"
SHUTDOWN = "SHUTDOWN"
STOP_WAIT_S = 10.0  # at shutdown: how long recording the interrupted run and releasing the lease may take


class RetentionStore(ChangeTrimmer, Protocol):
    """The lease, the run receipts and the change log's trimming (app/db/retention.py implements it on Neo4j)."""

    async def acquire_lease(self, replica: str, *, now: datetime, expires_at: datetime) -> tuple[bool, Lease]: ...

    async def renew_lease(self, replica: str, *, expires_at: datetime) -> bool: ...

    async def release_lease(self, replica: str, *, now: datetime) -> bool: ...

    async def begin_run(
        self,
        replica: str,
        run_id: str,
        *,
        now: datetime,
        expires_at: datetime,
        due_before: datetime,
        inactive_days: int | None,
    ) -> bool: ...

    async def finish_run(self, run: RetentionRun) -> RetentionRun: ...

    async def runs(self, limit: int = 10) -> list[RetentionRun]: ...


def replica_id() -> str:
    """hostname:pid:random — unique per process, shown on the runs it makes."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RetentionMetrics:
    """The retention gauges and counter, on the app's registry.

    The last-run gauges show the latest finished run of any replica, read from the database at each scheduler
    tick, so every replica reports the same; the runs counter counts the runs this process made, by status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_run = Gauge(
            "idgraph_retention_last_run_timestamp_seconds",
            "Start time (Unix seconds) of the latest finished automatic retention run, by any replica.",
            registry=registry,
        )
        self.last_finished = Gauge(
            "idgraph_retention_last_run_finished_timestamp_seconds",
            "Finish time (Unix seconds) of the latest finished automatic retention run, by any replica.",
            registry=registry,
        )
        self.last_deleted = Gauge(
            "idgraph_retention_last_run_profiles_deleted",
            "Profiles the latest finished automatic retention run deleted.",
            registry=registry,
        )
        self.last_failed = Gauge(
            "idgraph_retention_last_run_failed",
            "Profiles the latest finished automatic retention run could not purge.",
            registry=registry,
        )
        self.last_success = Gauge(
            "idgraph_retention_last_run_success",
            "1 when the latest finished automatic retention run COMPLETED, 0 otherwise.",
            registry=registry,
        )
        self.runs = Counter(
            "idgraph_retention_runs",
            "Automatic retention runs this replica made, by status (COMPLETED, FAILED, ABANDONED).",
            ("status",),
            registry=registry,
        )
        self.lease_held = Gauge(
            "idgraph_retention_lease_held", "1 while this replica holds the retention lease.", registry=registry
        )
        self.last_trimmed = Gauge(
            "idgraph_retention_last_run_changes_trimmed",
            "Change log events older than [audit] keep_days the latest finished automatic run deleted.",
            registry=registry,
        )
        self.changes_trimmed = Gauge(
            "idgraph_audit_changes_trimmed",
            "Change log events older than [audit] keep_days deleted by every automatic run so far, by any replica "
            "(kept in the database).",
            registry=registry,
        )

    def show_last(self, run: RetentionRun) -> None:
        self.last_run.set(run.started_at.timestamp())
        if run.finished_at is not None:
            self.last_finished.set(run.finished_at.timestamp())
        self.last_deleted.set(run.profiles_deleted)
        self.last_failed.set(run.failed)
        self.last_success.set(1 if run.status is RunStatus.COMPLETED else 0)
        self.last_trimmed.set(run.changes_trimmed)


class RetentionScheduler:
    """Runs the retention purge (when `retention` is given) and trims the change log every `retention.interval`
    (daily without `retention`) while this replica holds the lease."""

    def __init__(
        self,
        store: RetentionStore,
        service: IdentityService,
        maintenance: MaintenanceStore,
        retention: Retention | None,
        *,
        lease_s: float,
        audit: AuditRetention | None = None,
        replica: str | None = None,
        metrics: RetentionMetrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.service = service
        self.maintenance = maintenance
        self.retention = retention
        self.audit = audit or AuditRetention()
        self.interval = retention.interval if retention is not None else DEFAULT_INTERVAL
        self.lease = timedelta(seconds=lease_s)
        self.replica = replica or replica_id()
        self.metrics = metrics
        self.clock = clock
        self.ready = ready  # False: this replica may not purge (e.g. its erasure key is not yet accepted)
        self.renew_every_s = lease_s / 3
        self._task: asyncio.Task[None] | None = None
        self._holds = False

    # -- the background task ------------------------------------------------------------------------------------

    def start(self) -> None:
        logger.info(
            "automatic retention on: %s, change log kept %d days, every %s, replica %s, lease %gs",
            "no purge" if self.retention is None else f"inactive {self.retention.inactive_days} days",
            self.audit.keep_days,
            format_interval(self.interval),
            self.replica,
            self.lease.total_seconds(),
        )
        self._task = asyncio.create_task(self._forever(), name="idgraph-retention")

    async def stop(self) -> None:
        """Cancel the task (an interrupted run is recorded ABANDONED) and release the lease if this replica holds it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._holds:
            try:
                async with asyncio.timeout(STOP_WAIT_S):
                    await self.store.release_lease(self.replica, now=self.clock())
            except (AppError, TimeoutError) as error:
                logger.warning("retention: could not release the lease: %s", _code(error))
            self._set_holds(False)

    async def _forever(self) -> None:
        if self.retention is None:
            # Only trimming, daily: no need to meet the database at start-up, nor to be cut off by an early shutdown.
            await asyncio.sleep(self.renew_every_s)
        while True:
            try:
                wait_s = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the task must outlive any one failure; the log names the type only
                logger.warning("retention: tick failed: %s", _code(error))
                wait_s = self.renew_every_s
            await asyncio.sleep(wait_s)

    # -- one step ------------------------------------------------------------------------------------------------

    async def tick(self) -> float:
        """Take or renew the lease; as its holder, run the purge when due. Returns the seconds until the next tick."""
        if not self.ready():
            self._set_holds(False)
            return self.renew_every_s
        now = self.clock()
        try:
            acquired, lease = await self.store.acquire_lease(self.replica, now=now, expires_at=now + self.lease)
        except AppError as error:
            logger.warning("retention: lease not checked: %s", error.code)
            self._set_holds(False)
            return self.renew_every_s
        self._set_holds(acquired)
        if self.metrics is not None:
            self.metrics.changes_trimmed.set(lease.changes_trimmed)
        if acquired and is_due(lease.last_run_started_at, now, self.interval):
            await self.run()
            return 0.0  # look again at once: the next run is due an interval from this start
        await self._show_last_run()
        if not acquired:
            return self.renew_every_s
        assert lease.last_run_started_at is not None
        until_due = (lease.last_run_started_at + self.interval - now).total_seconds()
        return max(0.0, min(self.renew_every_s, until_due))

    async def run(self) -> RetentionRun | None:
        """Start a run (only if the lease is still ours and the last run started an interval ago), purge and trim
        the change log. Returns the run's receipt, or None when it was not started."""
        now = self.clock()
        inactive_days = self.retention.inactive_days if self.retention is not None else None
        run_id = f"retention:{now.isoformat(timespec='microseconds')}:{secrets.token_hex(4)}"
        run = RetentionRun(run_id, self.replica, now, inactive_days, RunStatus.RUNNING)
        report = PurgeReport(cutoff=now - timedelta(days=inactive_days or 0), dry_run=False)
        trim = TrimReport(before=trim_cutoff(now, self.audit.keep_days))
        beginning = asyncio.ensure_future(
            self.store.begin_run(
                self.replica,
                run_id,
                now=now,
                expires_at=now + self.lease,
                due_before=now - self.interval,
                inactive_days=inactive_days,
            )
        )
        try:
            started = await asyncio.shield(beginning)
        except asyncio.CancelledError:  # shutdown while the run was being recorded: it may have committed
            with contextlib.suppress(AppError, TimeoutError):
                async with asyncio.timeout(STOP_WAIT_S):
                    if await beginning:
                        await self._finish(run, report, RunStatus.ABANDONED, SHUTDOWN, trim)
            raise
        if not started:
            return None
        logger.info("retention run %s started", run_id)
        work = asyncio.create_task(self._work(now, report, trim))
        try:
            lost = await self._renew_while(work, now + self.lease)
        except asyncio.CancelledError:  # shutdown: stop the purge, record it, then let the cancellation through
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            with contextlib.suppress(AppError, TimeoutError):
                async with asyncio.timeout(STOP_WAIT_S):
                    await self._finish(run, report, RunStatus.ABANDONED, SHUTDOWN, trim)
            raise
        if lost or trim.lease_lost:
            return await self._finish(run, report, RunStatus.ABANDONED, LEASE_LOST, trim)
        error = work.exception()
        if error is not None:
            logger.warning("retention run %s stopped: %s", run_id, _code(error))
            return await self._finish(run, report, RunStatus.FAILED, _code(error), trim)
        status = RunStatus.FAILED if report.failed else RunStatus.COMPLETED
        return await self._finish(run, report, status, None, trim)

    async def _work(self, now: datetime, report: PurgeReport, trim: TrimReport) -> PurgeReport:
        """The run's work: the purge, when [retention] is given, then the change log's trimming."""
        if self.retention is not None:
            await purge(
                self.service,
                self.maintenance,
                inactive_days=self.retention.inactive_days,
                now=now,
                actor=RETENTION_ACTOR,
                report=report,
            )
        await trim_change_log(self.store, self.replica, trim, clock=self.clock)
        return report

    async def _renew_while(self, work: asyncio.Task[PurgeReport], held_until: datetime) -> bool:
        """Renew the lease every third of its length until `work` is done. Cancel the work and return True when
        the lease is taken, or not renewed by a third of a lease before `held_until`: the run then stops before
        any other replica may take the lease."""
        margin = timedelta(seconds=self.renew_every_s)
        while True:
            wait_s = min(self.renew_every_s, (held_until - margin - self.clock()).total_seconds())
            done, _ = await asyncio.wait({work}, timeout=max(0.0, wait_s))
            if done:
                return False
            now = self.clock()
            if now >= held_until - margin:
                logger.warning("retention: lease not renewed in time; stopping the run")
                break
            try:
                async with asyncio.timeout((held_until - margin - now).total_seconds()):
                    renewed = await self.store.renew_lease(self.replica, expires_at=now + self.lease)
            except (AppError, TimeoutError) as error:  # try again while the lease lasts
                logger.warning("retention: lease not renewed: %s", _code(error))
                continue
            if not renewed:
                logger.warning("retention: lease taken by another replica; stopping the run")
                break
            held_until = now + self.lease
        self._set_holds(False)
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        return True

    async def _finish(
        self, run: RetentionRun, report: PurgeReport, status: RunStatus, error: str | None, trim: TrimReport
    ) -> RetentionRun:
        finished = replace(
            run,
            status=status,
            finished_at=self.clock(),
            candidates=report.candidates,
            profiles_deleted=report.profiles_deleted,
            identities_deleted=report.identities_deleted,
            failed=sum(report.failed.values()),
            error=error,
            changes_trimmed=trim.trimmed,
        )
        stored = await self.store.finish_run(finished)
        logger.info(
            "retention run %s %s: %d candidates, %d profiles and %d identities deleted, %d failed, %d changes trimmed",
            run.id,
            stored.status,
            stored.candidates,
            stored.profiles_deleted,
            stored.identities_deleted,
            stored.failed,
            stored.changes_trimmed,
        )
        if self.metrics is not None:
            self.metrics.runs.labels(str(stored.status)).inc()
            self.metrics.show_last(stored)
        return stored

    async def _show_last_run(self) -> None:
        if self.metrics is None:
            return
        try:
            runs = await self.store.runs(limit=5)
        except AppError as error:
            logger.warning("retention: last run not read: %s", error.code)
            return
        finished = [r for r in runs if r.status is not RunStatus.RUNNING]
        if finished:
            self.metrics.show_last(finished[0])

    def _set_holds(self, holds: bool) -> None:
        self._holds = holds
        if self.metrics is not None:
            self.metrics.lease_held.set(1 if holds else 0)


def _code(error: BaseException) -> str:
    """What a log line may say about an error: its code, or its type; never its message (it may hold data)."""
    return error.code if isinstance(error, AppError) else type(error).__name__
