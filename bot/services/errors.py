"""The services' exception tree: every refusal a user can meet, each with one friendly sentence.

``ServiceError.user_message`` is what the front end shows, as is; the Discord layer maps the
whole tree in one place and never needs to look inside. Another user's subject is reported
exactly like a missing one (:class:`UnknownSubject`), so errors never reveal what others taught.
"""

from collections.abc import Sequence


class ServiceError(Exception):
    """Base of every refusal. ``user_message`` is one sentence addressed to the user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class InvalidPhoto(ServiceError):
    """One or more uploads are not acceptable photos; nothing was stored.

    ``reasons`` holds one sentence per refused file (from photo validation).
    """

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        joined = " ".join(self.reasons)
        super().__init__(f"I couldn't use {_count(len(self.reasons), 'photo')}: {joined}")


class InvalidName(ServiceError):
    """The subject name is empty, too long or otherwise unusable (e.g. "all")."""


class TooManySubjects(ServiceError):
    """The user already has the most subjects allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} subjects, the most I can remember per person. "
            "Use /forget on one first."
        )


class TooManyPhotos(ServiceError):
    """The upload would take the subject past its photo limit (or one teach sends too many)."""

    def __init__(self, limit: int, *, existing: int = 0) -> None:
        self.limit = limit
        self.existing = existing
        if existing:
            message = (
                f"That would give it more than {limit} photos (it has {existing}); "
                f"send at most {max(limit - existing, 0)} more."
            )
        else:
            message = f"Please send at most {limit} photos at a time."
        super().__init__(message)


class TooFewPhotos(ServiceError):
    """Fewer usable (new, non-duplicate) photos than training needs."""

    def __init__(self, minimum: int, got: int) -> None:
        self.minimum = minimum
        self.got = got
        super().__init__(
            f"I need at least {_count(minimum, 'different photo')} to learn something; I got {got}."
        )


class JobAlreadyQueued(ServiceError):
    """The user already has a training queued or running (one at a time per person)."""

    def __init__(self, job_id: int, subject: str) -> None:
        self.job_id = job_id
        self.subject = subject
        super().__init__(
            f"I'm already learning {subject} for you (job #{job_id}); "
            "wait for it to finish or cancel it first."
        )


class QueueFull(ServiceError):
    """The global training queue is at capacity."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"The training queue is full ({limit} waiting); please try again later.")


class UnknownSubject(ServiceError):
    """No subject of *this user* by that name or id (another user's is reported the same way)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"I don't know anything called {name!r} of yours.")


class AmbiguousSubject(ServiceError):
    """The question could mean several of the user's subjects; ``candidates`` are their names."""

    def __init__(self, candidates: Sequence[str]) -> None:
        self.candidates = list(candidates)
        super().__init__(f"Which one do you mean: {_or(self.candidates)}?")


class SubjectNotReady(ServiceError):
    """The subject has no trained tokens yet (first training queued/running, or it failed)."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        super().__init__(f"{name} {detail}")


class UnknownJob(ServiceError):
    """No active job of this user with that id."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(f"You have no running or queued job #{job_id}.")


class WorkerUnavailable(ServiceError):
    """The model worker cannot answer right now (starting, restarting after a crash, or down)."""

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__("My brain is restarting; please ask again in a minute.")


class NoNewPhotos(ServiceError):
    """Every photo sent is one the subject already has."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"I already have all of these photos of {subject}; send some different ones.")


class InvalidQuestion(ServiceError):
    """The question is empty or too long."""


class AnswerFailed(ServiceError):
    """The model could not answer this particular request (the worker is up)."""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _or(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]
