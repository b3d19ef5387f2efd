"""Teach: validate uploads, store them content-addressed, and queue the subject's training.

Blocking code (Pillow, SQL, files): :class:`~bot.services.facade.Services` runs it in a thread.
Order matters for "nothing half-stored": every photo is validated before anything is written;
files are put before the one transaction that adds their rows and the job; if that transaction
fails, the files it would have referenced are removed again (unless another row uses the same
bytes). A crash between the two leaves only unreferenced files, which the retention sweep removes.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.services.errors import (
    InvalidName,
    InvalidPhoto,
    JobAlreadyQueued,
    NoNewPhotos,
    QueueFull,
    TooFewPhotos,
    TooManyPhotos,
    TooManySubjects,
)
from bot.services.files import delete_unreferenced
from bot.services.limits import ServiceLimits
from bot.services.photos import PhotoLimits, PhotoRejected, ValidatedPhoto, validate_photo
from bot.services.resolution import normalize_kind
from bot.services.results import PhotoUpload, TeachReceipt
from storage import (
    DuplicateName,
    FileStore,
    JobStatus,
    Namespace,
    Subject,
    active_job_for_owner,
    active_job_for_subject,
    add_photo,
    count_active_jobs,
    count_subjects,
    create_subject,
    enqueue_job,
    find_subject_by_name,
    list_jobs,
    list_photos,
    queue_position,
    session_scope,
    set_subject_facts,
)
from storage.repositories import MAX_NAME_LENGTH

RESERVED_NAMES = frozenset({"all"})  # "/forget all" means everything
MAX_KIND_LENGTH = 32
MAX_FACTS_LENGTH = 1000


@dataclass(frozen=True)
class TeachRequest:
    """A teach call with its arguments checked and its photos validated."""

    user_id: int
    name: str
    kind: str
    facts: str | None
    photos: list[tuple[str, ValidatedPhoto]]  # (file name, photo), duplicates within the upload removed
    skipped: list[str]


def check_arguments(
    name: str, kind: str, facts: str | None, photos: Sequence[PhotoUpload], limits: ServiceLimits
) -> tuple[str, str, str | None]:
    """The cleaned ``(name, kind, facts)``; refuses bad ones and a wrong number of photos.

    Raises:
        InvalidName, TooManyPhotos, TooFewPhotos.
    """
    clean_name = " ".join(name.split())
    if not clean_name:
        raise InvalidName("Please give it a name.")
    if len(clean_name) > MAX_NAME_LENGTH:
        raise InvalidName(f"That name is too long; use at most {MAX_NAME_LENGTH} characters.")
    if clean_name.casefold() in RESERVED_NAMES:
        raise InvalidName(f'"{clean_name}" is a word I reserve for commands; please pick another name.')
    clean_kind = normalize_kind(kind)
    if len(clean_kind) > MAX_KIND_LENGTH:
        raise InvalidName(f"The kind should be a word or two (at most {MAX_KIND_LENGTH} characters).")
    clean_facts = facts.strip() if facts is not None else None
    if clean_facts is not None and len(clean_facts) > MAX_FACTS_LENGTH:
        raise InvalidName(f"Please keep the facts under {MAX_FACTS_LENGTH} characters.")
    if len(photos) > limits.max_photos_per_teach:
        raise TooManyPhotos(limits.max_photos_per_teach)
    if not photos:
        raise TooFewPhotos(limits.min_photos_per_teach, 0)
    return clean_name, clean_kind, clean_facts


def validate_uploads(
    uploads: Sequence[PhotoUpload], limits: PhotoLimits
) -> tuple[list[tuple[str, ValidatedPhoto]], list[str]]:
    """Every upload validated; ``(photos, skipped)`` with in-upload duplicates skipped.

    Raises:
        InvalidPhoto: one or more uploads refused (all reasons listed; nothing is stored).
    """
    reasons: list[str] = []
    accepted: list[tuple[str, ValidatedPhoto]] = []
    for upload in uploads:
        try:
            accepted.append(
                (upload.filename, validate_photo(upload.data, filename=upload.filename, limits=limits))
            )
        except PhotoRejected as rejected:
            reasons.append(rejected.reason)
    if reasons:
        raise InvalidPhoto(reasons)
    unique: dict[str, tuple[str, ValidatedPhoto]] = {}
    skipped: list[str] = []
    for filename, photo in accepted:
        if photo.sha256 in unique:
            skipped.append(f'"{filename}" is the same photo as "{unique[photo.sha256][0]}".')
        else:
            unique[photo.sha256] = (filename, photo)
    return list(unique.values()), skipped


def store(db: Engine, files: FileStore, limits: ServiceLimits, request: TeachRequest) -> TeachReceipt:
    """Check quotas, store new photos and queue the training, in one transaction.

    Raises:
        TooManySubjects, JobAlreadyQueued, QueueFull, TooManyPhotos, TooFewPhotos, NoNewPhotos.
    """
    written: list[str] = []
    try:
        with session_scope(db) as session:
            receipt = _store(session, files, limits, request, written)
    except BaseException:
        delete_unreferenced(db, files, written)
        raise
    return receipt


def _store(
    session: Session, files: FileStore, limits: ServiceLimits, request: TeachRequest, written: list[str]
) -> TeachReceipt:
    user_id = request.user_id
    subject = find_subject_by_name(session, owner_id=user_id, name=request.name)
    is_new = subject is None
    if is_new and count_subjects(session, owner_id=user_id) >= limits.max_subjects_per_user:
        raise TooManySubjects(limits.max_subjects_per_user)
    _check_job_quotas(session, limits, user_id=user_id, subject=subject)

    known = (
        set()
        if subject is None
        else {p.sha256 for p in list_photos(session, owner_id=user_id, subject_id=subject.id)}
    )
    display_name = request.name if subject is None else subject.display_name
    skipped = list(request.skipped)
    new_photos = []
    for filename, photo in request.photos:
        if photo.sha256 in known:
            skipped.append(f'"{filename}" is already one of {display_name}\'s photos.')
        else:
            new_photos.append(photo)
    if not new_photos:
        raise NoNewPhotos(display_name)
    total = len(known) + len(new_photos)
    if total > limits.max_photos_per_subject:
        raise TooManyPhotos(limits.max_photos_per_subject, existing=len(known))
    if total < limits.min_photos_per_teach:
        raise TooFewPhotos(limits.min_photos_per_teach, total)

    if subject is None:
        try:
            subject = create_subject(
                session, owner_id=user_id, display_name=request.name, kind=request.kind, facts=request.facts
            )
        except DuplicateName as error:  # a concurrent teach of the same name won the race
            raise InvalidName(f"I'm already adding {request.name}; try again in a moment.") from error
    elif request.facts is not None:
        set_subject_facts(session, owner_id=user_id, subject_id=subject.id, facts=request.facts or None)
    for photo in new_photos:
        stored = files.put(photo.data, suffix=photo.suffix, namespace=Namespace.PHOTOS)
        written.append(stored.relative_path)
        add_photo(
            session,
            owner_id=user_id,
            subject_id=subject.id,
            sha256=photo.sha256,
            size_bytes=photo.size_bytes,
            width=photo.width,
            height=photo.height,
            mime=photo.mime,
            path=stored.relative_path,
        )
    job = enqueue_job(session, owner_id=user_id, subject_id=subject.id, max_attempts=limits.max_job_attempts)
    assert job.id is not None
    return TeachReceipt(
        subject_id=subject.id,
        job_id=job.id,
        display_name=subject.display_name,
        is_new_subject=is_new,
        photos_added=len(new_photos),
        photos_skipped=skipped,
        queue_position=queue_position(session, job_id=job.id) or 0,
        total_photos=total,
    )


def _check_job_quotas(
    session: Session, limits: ServiceLimits, *, user_id: int, subject: Subject | None
) -> None:
    if subject is not None:
        own = active_job_for_subject(session, owner_id=user_id, subject_id=subject.id)
        if own is not None and own.status == JobStatus.QUEUED:
            return  # more photos for a subject whose training has not started join that job
    if count_active_jobs(session, owner_id=user_id) >= limits.max_active_jobs_per_user:
        active = active_job_for_owner(session, owner_id=user_id)
        assert active is not None and active.id is not None
        active_subject = session.get(Subject, active.subject_id)
        raise JobAlreadyQueued(active.id, active_subject.display_name if active_subject else "something")
    queued = list_jobs(session, statuses=[JobStatus.QUEUED], limit=limits.max_queue_length)
    if len(queued) >= limits.max_queue_length:
        raise QueueFull(limits.max_queue_length)
