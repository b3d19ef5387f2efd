"""Ask and recognise: which subjects, in what state, and what to tell the asker about it.

The blocking half (:func:`load_subjects`) reads the asker's subjects with their training state in
one transaction; the rest is pure: resolution, readiness checks and the caveat shown beside an
answer while a subject is (re)training.
"""

from dataclasses import dataclass

from sqlmodel import Session

from bot.services.errors import SubjectNotReady, UnknownSubject
from bot.services.resolution import Candidate, Resolution, resolve
from bot.worker.protocol import SubjectRef
from storage import (
    JobStatus,
    SubjectStatus,
    active_job_for_subject,
    list_jobs,
    list_subjects,
    queue_position,
    subject_name_key,
)


@dataclass(frozen=True)
class SubjectState:
    """One of the asker's subjects and where its training stands."""

    ref: SubjectRef
    status: SubjectStatus
    job_status: JobStatus | None  # of its queued or running job
    queue_position: int | None  # 1 = next; 0 = training now
    progress: float  # 0..1 of a running job
    last_error: str | None  # of its last failed job, if it never trained

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def trained(self) -> bool:
        return self.ref.artifact_path is not None

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.ref.subject_id, self.ref.name, self.ref.kind)

    def training_state(self) -> str:
        """ "training now, 40% done" / "#2 in the queue" / "waiting"."""
        if self.job_status == JobStatus.RUNNING:
            return f"training now, {self.progress:.0%} done"
        if self.queue_position:
            return f"#{self.queue_position} in the queue"
        return "waiting to train"


def load_subjects(session: Session, *, owner_id: int) -> list[SubjectState]:
    """Every subject of ``owner_id`` with its training state."""
    states = []
    for subject in list_subjects(session, owner_id=owner_id):
        job = active_job_for_subject(session, owner_id=owner_id, subject_id=subject.id)
        last_error = None
        if subject.artifact_path is None and job is None:
            failed = [
                j
                for j in list_jobs(session, owner_id=owner_id, statuses=[JobStatus.FAILED], limit=50)
                if j.subject_id == subject.id
            ]
            last_error = failed[0].error if failed else None
        states.append(
            SubjectState(
                ref=SubjectRef(
                    subject_id=subject.id,
                    name=subject.display_name,
                    kind=subject.kind,
                    facts=subject.facts or "",
                    artifact_path=subject.artifact_path,
                    artifact_sha256=subject.artifact_sha256,
                ),
                status=subject.status,
                job_status=None if job is None else job.status,
                queue_position=None
                if job is None or job.id is None
                else queue_position(session, job_id=job.id),
                progress=0.0 if job is None else job.progress,
                last_error=last_error,
            )
        )
    return states


def choose(states: list[SubjectState], question: str, explicit: str | None) -> tuple[list[SubjectState], str]:
    """The subjects a question is about (``explicit``, a name or id, wins) and the question as
    the model should read it.

    Raises:
        UnknownSubject: ``explicit`` is not one of the asker's subjects.
        AmbiguousSubject: "my <kind>" with several of that kind.
    """
    by_id = {state.ref.subject_id: state for state in states}
    if explicit is not None:
        key = subject_name_key(explicit)
        match = by_id.get(explicit.strip()) or next(
            (state for state in states if subject_name_key(state.name) == key), None
        )
        if match is None:
            raise UnknownSubject(explicit)
        resolved = resolve(question, [match.candidate])
        return [match], resolved.question
    resolution: Resolution = resolve(question, [state.candidate for state in states])
    return [by_id[candidate.subject_id] for candidate in resolution.subjects], resolution.question


def refuse_untrainable(states: list[SubjectState]) -> None:
    """Refuse subjects that never trained and have no training coming.

    Raises:
        SubjectNotReady
    """
    for state in states:
        if not state.trained and state.job_status is None:
            reason = f" ({state.last_error.rstrip('.')})" if state.last_error else ""
            raise SubjectNotReady(
                state.name, f"couldn't be trained{reason}. Please teach it again with /teach."
            )


def caveat(states: list[SubjectState]) -> str | None:
    """What to say beside an answer about subjects still (re)training; None if all are done."""
    notes = []
    for state in states:
        if state.job_status is None:
            continue
        if state.trained:
            notes.append(
                f"{state.name} is being retrained ({state.training_state()}); "
                "I'm answering from the previous training."
            )
        else:
            notes.append(
                f"{state.name} is still training ({state.training_state()}), so I don't know what "
                f"{state.name} looks like yet; this answer only uses what you told me."
            )
    return " ".join(notes) or None


def not_ready(states: list[SubjectState], subject_ids: list[str]) -> SubjectNotReady:
    """The refusal for a recognition question about subjects that are not trained yet."""
    names = [state for state in states if state.ref.subject_id in subject_ids] or states
    first = names[0]
    return SubjectNotReady(
        first.name,
        f"is still training ({first.training_state()}); I can tell whether {first.name} is in a "
        "photo once that's done, and I'll let you know.",
    )
