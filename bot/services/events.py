"""Job events to the front end: poll the database outbox, fan out to subscribers' queues.

The worker (any worker, on any machine) appends a ``JobEvent`` in the same transaction as each
job change; the bot polls ``events_after(cursor)`` on its clock and turns each event into a
:class:`JobUpdate` for every subscriber. No direct calls into Discord, and nothing is lost
across a worker crash (an uncommitted change has no event either). Events that happened while
the bot was down are not replayed: the cursor starts at the newest event.
"""

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.services.results import JobUpdate, JobUpdateKind
from storage import JobEvent, Subject, events_after, latest_event_id, session_scope

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 1000
POLL_BATCH = 200
_KINDS: frozenset[str] = frozenset({"started", "progress", "succeeded", "failed", "cancelled", "requeued"})
REQUEUED_MESSAGE = "The training worker restarted; your training will start again shortly."


class EventDispatcher:
    """Turns outbox rows into :class:`JobUpdate` s for subscribers."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.cursor: int | None = None
        self._subscribers: list[asyncio.Queue[JobUpdate]] = []
        self._lock = asyncio.Lock()

    def subscribe(self) -> "asyncio.Queue[JobUpdate]":
        queue: asyncio.Queue[JobUpdate] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_SIZE)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[JobUpdate]") -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    async def start(self) -> None:
        """Begin after the newest event already in the database."""
        if self.cursor is None:
            self.cursor = await asyncio.to_thread(self._latest)

    async def poll(self) -> int:
        """Fetch new events and deliver them; returns how many were delivered."""
        async with self._lock:  # one poll at a time keeps the cursor monotonic
            if self.cursor is None:
                await self.start()
            assert self.cursor is not None
            updates, cursor = await asyncio.to_thread(self._fetch, self.cursor)
            self.cursor = cursor
        for update in updates:
            for queue in list(self._subscribers):
                try:
                    queue.put_nowait(update)
                except asyncio.QueueFull:
                    log.warning("a job-update subscriber is %d updates behind; dropping one", queue.qsize())
        return len(updates)

    def _latest(self) -> int:
        with session_scope(self.db) as session:
            return latest_event_id(session)

    def _fetch(self, cursor: int) -> tuple[list[JobUpdate], int]:
        with session_scope(self.db) as session:
            events = events_after(session, after_id=cursor, limit=POLL_BATCH)
            updates = [update for event in events if (update := _to_update(session, event)) is not None]
        return updates, (events[-1].id or cursor) if events else cursor


def _to_update(session: Session, event: JobEvent) -> JobUpdate | None:
    if event.kind not in _KINDS or event.job_id is None or event.subject_id is None or event.id is None:
        return None
    subject = session.get(Subject, event.subject_id)
    if subject is None:  # forgotten since
        return None
    payload: dict[str, Any] = event.payload
    kind: JobUpdateKind = event.kind  # type: ignore[assignment]
    message = ""
    metrics: dict[str, Any] = {}
    if kind == "succeeded":
        metrics = subject.metrics or {}
        message = str(metrics.get("summary", ""))
    elif kind == "failed":
        message = str(payload.get("error") or "Training failed.")
    elif kind == "requeued":
        message = REQUEUED_MESSAGE
    return JobUpdate(
        event_id=event.id,
        job_id=event.job_id,
        owner_id=event.owner_id,
        subject_id=event.subject_id,
        subject=subject.display_name,
        kind=kind,
        step=int(payload.get("step") or 0),
        total_steps=int(payload.get("total_steps") or 0),
        loss=payload.get("loss"),
        eta_seconds=payload.get("eta_seconds"),
        message=message,
        metrics=metrics,
    )
