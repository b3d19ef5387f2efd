"""An in-memory double of ``bot.services.api.Services`` for the Discord layer's tests.

Same method names, keyword arguments, results and errors as the real services, no database and
no model. "Recognition" compares an image's mean colour with the colour of the subject's first
photo, so tests can build positive and negative pictures with Pillow. Job updates are emitted
when a test asks (``progress``, ``succeed``, …), exactly as the real services would publish them.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from bot.services.api import (
    AskResult,
    ForgetResult,
    InvalidName,
    InvalidPhoto,
    JobSummary,
    JobUpdate,
    JobUpdateKind,
    PhotoUpload,
    RecognitionHit,
    StatusReport,
    SubjectNotReady,
    SubjectSummary,
    TeachReceipt,
    TooFewPhotos,
    UnknownSubject,
    WorkerHealth,
)

Colour = tuple[int, int, int]
HELDOUT = {
    "heldout_positives": 4,
    "heldout_positives_recognised": 4,
    "heldout_negatives": 50,
    "heldout_negatives_rejected": 47,
}


def photo_bytes(colour: Colour, size: int = 48, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format=fmt)
    return out.getvalue()


def mean_colour(data: bytes, filename: str = "That file") -> Colour:
    try:
        with Image.open(io.BytesIO(data)) as image:
            r, g, b = image.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
            return int(r), int(g), int(b)
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidPhoto([f"{filename} is not a photo I can read."]) from error


@dataclass
class FakeSubject:
    subject_id: str
    owner_id: int
    name: str
    kind: str
    colour: Colour
    photos: list[bytes]
    facts: str | None
    status: str = "queued"
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeJob:
    job_id: int
    owner_id: int
    subject: FakeSubject
    status: str = "queued"
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    eta_seconds: float | None = None


class FakeServices:
    def __init__(self, *, queue_ahead: int = 1) -> None:
        self.subjects: dict[str, FakeSubject] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.queue_ahead = queue_ahead
        #: Set to an exception to make the next call of any method raise it.
        self.fail_with: BaseException | None = None
        self._subscribers: list[asyncio.Queue[JobUpdate]] = []
        self._ids = itertools.count(1)
        self._events = itertools.count(1)

    # ------------------------------------------------------------------ helpers for tests

    def _record(self, method: str, **kwargs: Any) -> None:
        self.calls.append((method, kwargs))
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error

    def called(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]

    def add_subject(
        self, owner_id: int, name: str, colour: Colour, *, kind: str = "dog", ready: bool = True
    ) -> FakeSubject:
        subject = FakeSubject(
            f"s{next(self._ids)}", owner_id, name, kind, colour, [photo_bytes(colour)], None
        )
        if ready:
            subject.status, subject.metrics = "ready", dict(HELDOUT)
        self.subjects[subject.subject_id] = subject
        return subject

    def emit(self, job_id: int, kind: JobUpdateKind, **fields: Any) -> JobUpdate:
        job = self.jobs[job_id]
        update = JobUpdate(
            event_id=next(self._events),
            job_id=job_id,
            owner_id=job.owner_id,
            subject_id=job.subject.subject_id,
            subject=job.subject.name,
            kind=kind,
            **fields,
        )
        for queue in self._subscribers:
            queue.put_nowait(update)
        return update

    def progress(self, job_id: int, step: int, total: int = 100, loss: float = 0.5, eta: float = 90) -> None:
        job = self.jobs[job_id]
        job.status, job.step, job.total_steps, job.loss, job.eta_seconds = "running", step, total, loss, eta
        self.emit(job_id, "progress", step=step, total_steps=total, loss=loss, eta_seconds=eta)

    def succeed(self, job_id: int) -> None:
        job = self.jobs[job_id]
        job.status, job.subject.status, job.subject.metrics = "succeeded", "ready", dict(HELDOUT)
        self.emit(
            job_id,
            "succeeded",
            step=job.total_steps,
            total_steps=job.total_steps,
            message="recognised 4/4 of your held-out photos, rejected 47/50 look-alikes",
            metrics=dict(HELDOUT),
        )

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _owned(self, user_id: int, name: str) -> FakeSubject:
        for subject in self.subjects.values():
            if subject.owner_id == user_id and subject.name.lower() == name.strip().lower():
                return subject
        raise UnknownSubject(name)

    def _summary(self, job: FakeJob) -> JobSummary:
        active = [j for j in self.jobs.values() if j.status == "queued"]
        position = None
        if job.status == "running":
            position = 0
        elif job.status == "queued":
            position = self.queue_ahead + active.index(job) + 1
        return JobSummary(
            job_id=job.job_id,
            subject_id=job.subject.subject_id,
            subject=job.subject.name,
            status=job.status,
            step=job.step,
            total_steps=job.total_steps,
            loss=job.loss,
            eta_seconds=job.eta_seconds,
            queue_position=position,
            owner_id=job.owner_id,
        )

    # ------------------------------------------------------------------ the Services API

    async def teach(
        self,
        *,
        user_id: int,
        name: str,
        photos: Sequence[PhotoUpload],
        kind: str = "other",
        facts: str | None = None,
    ) -> TeachReceipt:
        self._record("teach", user_id=user_id, name=name, photos=list(photos), kind=kind, facts=facts)
        if name.strip().lower() == "all":
            raise InvalidName('"all" is reserved for /forget all; pick another name.')
        colours = [mean_colour(photo.data, photo.filename) for photo in photos]
        if len(photos) < 3:
            raise TooFewPhotos(3, len(photos))
        subject = FakeSubject(
            f"s{next(self._ids)}", user_id, name.strip(), kind, colours[0], [p.data for p in photos], facts
        )
        self.subjects[subject.subject_id] = subject
        job = FakeJob(next(self._ids), user_id, subject)
        self.jobs[job.job_id] = job
        summary = self._summary(job)
        return TeachReceipt(
            subject_id=subject.subject_id,
            job_id=job.job_id,
            display_name=subject.name,
            is_new_subject=True,
            photos_added=len(photos),
            photos_skipped=[],
            queue_position=summary.queue_position or 0,
            total_photos=len(photos),
        )

    def _recognise(self, subject: FakeSubject, image: bytes) -> RecognitionHit:
        colour = mean_colour(image)
        distance = sum(abs(a - b) for a, b in zip(colour, subject.colour, strict=True)) / (3 * 255)
        probability = round(1.0 - distance, 2)
        return RecognitionHit(subject=subject.name, probability=probability, present=distance < 0.1)

    async def ask(
        self, *, user_id: int, question: str, image: bytes | None = None, subject: str | None = None
    ) -> AskResult:
        self._record("ask", user_id=user_id, question=question, image=image, subject=subject)
        if subject:
            meant = [self._owned(user_id, subject)]
        else:
            meant = [
                s
                for s in self.subjects.values()
                if s.owner_id == user_id and re.search(rf"\b{re.escape(s.name)}\b", question, re.IGNORECASE)
            ]
        if not meant:
            return AskResult(
                text="I can only guess: it looks like a photo.", subjects=[], is_recognition=False
            )
        target = meant[0]
        if image is not None and re.match(r"\s*(is|are)\b", question, re.IGNORECASE):
            if target.status != "ready":
                raise SubjectNotReady(target.name, "is still learning; ask again when it is ready.")
            hit = self._recognise(target, image)
            verdict = "Yes" if hit.present else "No"
            where = "is" if hit.present else "is not"
            return AskResult(f"{verdict}, {target.name} {where} in this photo.", [target.name], True)
        return AskResult(f"{target.name} is a {target.kind}.", [target.name], False)

    async def recognize_all(self, *, user_id: int, image: bytes) -> list[RecognitionHit]:
        self._record("recognize_all", user_id=user_id, image=image)
        hits = [
            self._recognise(s, image)
            for s in self.subjects.values()
            if s.owner_id == user_id and s.status == "ready"
        ]
        return sorted(hits, key=lambda h: -h.probability)

    async def list_subjects(self, *, user_id: int) -> list[SubjectSummary]:
        self._record("list_subjects", user_id=user_id)
        result = []
        for s in sorted(self.subjects.values(), key=lambda s: s.name.lower()):
            if s.owner_id != user_id:
                continue
            active = [j for j in self.jobs.values() if j.subject is s and j.status in ("queued", "running")]
            result.append(
                SubjectSummary(
                    subject_id=s.subject_id,
                    name=s.name,
                    kind=s.kind,
                    status=s.status,
                    photo_count=len(s.photos),
                    metrics=dict(s.metrics),
                    thumbnails=s.photos[:5],
                    facts=s.facts,
                    job=self._summary(active[0]) if active else None,
                )
            )
        return result

    async def subject_names(self, *, user_id: int, prefix: str = "", limit: int = 25) -> list[str]:
        self._record("subject_names", user_id=user_id, prefix=prefix, limit=limit)
        names = sorted(
            s.name
            for s in self.subjects.values()
            if s.owner_id == user_id and s.name.lower().startswith(prefix.lower())
        )
        return names[:limit]

    async def forget(self, *, user_id: int, name: str) -> ForgetResult:
        self._record("forget", user_id=user_id, name=name)
        if name == "all":
            doomed = [s for s in self.subjects.values() if s.owner_id == user_id]
        else:
            doomed = [self._owned(user_id, name)]
        cancelled = 0
        for subject in doomed:
            for job in [j for j in self.jobs.values() if j.subject is subject]:
                cancelled += job.status in ("queued", "running")
                del self.jobs[job.job_id]
            del self.subjects[subject.subject_id]
        photos = sum(len(s.photos) for s in doomed)
        return ForgetResult([s.name for s in doomed], photos, photos + len(doomed), cancelled)

    async def cancel(self, *, user_id: int, job_id: int) -> bool:
        self._record("cancel", user_id=user_id, job_id=job_id)
        job = self.jobs.get(job_id)
        if job is None or job.owner_id != user_id or job.status not in ("queued", "running"):
            return False
        job.status = "cancelling"
        return True

    async def status(self, *, user_id: int, operator: bool = False) -> StatusReport:
        self._record("status", user_id=user_id, operator=operator)
        jobs = [
            self._summary(j)
            for j in self.jobs.values()
            if (operator or j.owner_id == user_id) and j.status in ("queued", "running")
        ]
        queued = sum(j.status == "queued" for j in self.jobs.values()) + self.queue_ahead
        return StatusReport(
            jobs=jobs,
            queue_length=queued,
            workers=[WorkerHealth(name="local", alive=True, model="toyworld", device="cpu")],
            negative_bank="No negative bank is configured: recognition will be much weaker.",
        )

    async def start(self) -> None:
        self.calls.append(("start", {}))

    async def close(self) -> None:
        self.calls.append(("close", {}))

    def subscribe(self) -> asyncio.Queue[JobUpdate]:
        queue: asyncio.Queue[JobUpdate] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[JobUpdate]) -> None:
        self._subscribers.remove(queue)
