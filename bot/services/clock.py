"""The bot's clock: one APScheduler 3 ``AsyncIOScheduler`` that only *times* things.

It holds no state worth keeping (an in-memory job store): the database holds every job's state,
so losing the scheduler loses nothing. Its periodic jobs, each a coroutine on the bot's loop that
does its blocking work in a thread:

- dispatch job events from the outbox to subscribers (every ``event_poll_seconds``);
- re-queue running jobs whose worker stopped heart-beating (attempts capped, then failed);
- retention: purge old events and sweep files no row refers to (crash leftovers).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from bot.services.events import EventDispatcher
from bot.services.files import sweep_orphans
from bot.services.limits import ServiceLimits
from storage import FileStore, RequeueResult, purge_old_events, requeue_stale_jobs, session_scope, utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockPeriods:
    """How often each periodic job runs, in seconds. Errors name the bad field."""

    event_poll_seconds: float = 1.0
    stale_check_seconds: float = 30.0
    retention_seconds: float = 3600.0
    orphan_file_age_seconds: float = 3600.0

    def __post_init__(self) -> None:
        for name in (
            "event_poll_seconds",
            "stale_check_seconds",
            "retention_seconds",
            "orphan_file_age_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"ClockPeriods.{name} must be positive, got {getattr(self, name)}")


class Clock:
    """Starts and stops the scheduler and implements its periodic jobs."""

    def __init__(
        self,
        *,
        db: Engine,
        files: FileStore,
        dispatcher: EventDispatcher,
        limits: ServiceLimits,
        periods: ClockPeriods,
    ) -> None:
        self.db = db
        self.files = files
        self.dispatcher = dispatcher
        self.limits = limits
        self.periods = periods
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Schedule the periodic jobs on the running loop (call from a coroutine)."""
        if self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        scheduler.add_job(
            self.dispatch_events, "interval", seconds=self.periods.event_poll_seconds, id="events", **common
        )
        scheduler.add_job(
            self.recover_stale_jobs,
            "interval",
            seconds=self.periods.stale_check_seconds,
            id="stale",
            **common,
        )
        scheduler.add_job(
            self.retain, "interval", seconds=self.periods.retention_seconds, id="retention", **common
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    async def dispatch_events(self) -> None:
        await self.dispatcher.poll()

    async def recover_stale_jobs(self) -> RequeueResult:
        """Re-queue (or, out of attempts, fail) running jobs whose heartbeat is stale."""
        result = await asyncio.to_thread(self._recover)
        if result.requeued or result.failed:
            log.warning("stale jobs: requeued %s, failed %s", result.requeued, result.failed)
        return result

    async def retain(self) -> None:
        """Purge events past retention and files no row refers to."""
        purged, swept = await asyncio.to_thread(self._retain)
        if purged or swept:
            log.info("retention: %d old events purged, %d orphaned files removed", purged, swept)

    def _recover(self) -> RequeueResult:
        now = utc_now()
        with session_scope(self.db) as session:
            return requeue_stale_jobs(
                session, stale_before=now - timedelta(seconds=self.limits.stale_heartbeat_seconds), now=now
            )

    def _retain(self) -> tuple[int, int]:
        now = utc_now()
        with session_scope(self.db) as session:
            purged = purge_old_events(
                session, before=now - timedelta(seconds=self.limits.event_retention_seconds)
            )
        swept = sweep_orphans(
            self.db, self.files, older_than=now - timedelta(seconds=self.periods.orphan_file_age_seconds)
        )
        return purged, swept
