"""Repositories: ownership, names, photos, the job life cycle, stale recovery and the outbox."""

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import (
    DuplicateName,
    EventKind,
    JobLost,
    JobStatus,
    NotFound,
    Subject,
    SubjectStatus,
    active_job_for_owner,
    add_photo,
    claim_next_job,
    count_active_jobs,
    count_photos,
    count_subjects,
    create_subject,
    delete_subject,
    enqueue_job,
    events_after,
    find_subject_by_name,
    finish_job,
    get_job_for_owner,
    get_or_create_user,
    get_subject_for_owner,
    heartbeat,
    latest_event_id,
    list_photos,
    list_subjects,
    purge_old_events,
    queue_position,
    record_subject_artifact,
    request_cancel,
    requeue_stale_jobs,
    session_scope,
    update_job_progress,
)
from tests.storage.helpers import T0, at, make_jobs, make_subject

ALICE, BOB = 111, 222


def _add_photo(session: Session, *, owner_id: int, subject_id: str, sha: str) -> bool:
    _, added = add_photo(
        session,
        owner_id=owner_id,
        subject_id=subject_id,
        sha256=sha * 64,
        size_bytes=1000,
        width=640,
        height=480,
        mime="image/jpeg",
        path=f"photos/{sha * 2}/{sha * 2}/{sha * 64}.jpg",
    )
    return added


def test_users_are_created_once_and_remember_their_locale(engine: Engine) -> None:
    with session_scope(engine) as session:
        first = get_or_create_user(session, user_id=ALICE, now=T0)
        again = get_or_create_user(session, user_id=ALICE, locale="de", now=at(60))
        assert first.id == again.id == ALICE
        assert (again.locale, again.created_at) == ("de", T0)


def test_names_are_unique_per_owner_ignoring_case_and_spacing(engine: Engine) -> None:
    make_subject(engine, owner_id=ALICE, name="Mister  Bo")
    with pytest.raises(DuplicateName), session_scope(engine) as session:
        create_subject(session, owner_id=ALICE, display_name=" mister bo ", kind="pet")
    other = make_subject(engine, owner_id=BOB, name="MISTER BO")
    with session_scope(engine) as session:
        found = find_subject_by_name(session, owner_id=ALICE, name="MiStEr Bo")
        assert found is not None and found.display_name == "Mister Bo"
        assert found.id != other.id
        assert count_subjects(session, owner_id=ALICE) == 1
    with pytest.raises(ValueError, match="1-100 characters"), session_scope(engine) as session:
        create_subject(session, owner_id=ALICE, display_name="   ", kind="pet")


def test_another_owners_subject_is_invisible(engine: Engine) -> None:
    subject = make_subject(engine, owner_id=ALICE)
    with session_scope(engine) as session:
        _add_photo(session, owner_id=ALICE, subject_id=subject.id, sha="a")
        assert get_subject_for_owner(session, owner_id=BOB, subject_id=subject.id) is None
        assert find_subject_by_name(session, owner_id=BOB, name="Bo") is None
        assert list_subjects(session, owner_id=BOB) == []
        assert list_photos(session, owner_id=BOB, subject_id=subject.id) == []
        assert count_photos(session, owner_id=BOB, subject_id=subject.id) == 0
        for attempt in (
            lambda: _add_photo(session, owner_id=BOB, subject_id=subject.id, sha="b"),
            lambda: enqueue_job(session, owner_id=BOB, subject_id=subject.id),
            lambda: delete_subject(session, owner_id=BOB, subject_id=subject.id),
        ):
            with pytest.raises(NotFound):
                attempt()
    with session_scope(engine) as session:
        assert count_photos(session, owner_id=ALICE, subject_id=subject.id) == 1


def test_autocomplete_prefix_is_case_insensitive_and_literal(engine: Engine) -> None:
    for name in ("Bo", "bobby", "Mam", "100% cat"):
        make_subject(engine, owner_id=ALICE, name=name)
    with session_scope(engine) as session:
        names = [s.display_name for s in list_subjects(session, owner_id=ALICE, name_prefix="BO")]
        assert names == ["Bo", "bobby"]
        literal = list_subjects(session, owner_id=ALICE, name_prefix="100%")
        assert [s.display_name for s in literal] == ["100% cat"]
        assert list_subjects(session, owner_id=ALICE, name_prefix="%") == []


def test_duplicate_photos_are_skipped(engine: Engine) -> None:
    subject = make_subject(engine, owner_id=ALICE)
    with session_scope(engine) as session:
        added = [
            _add_photo(session, owner_id=ALICE, subject_id=subject.id, sha=sha) for sha in ("a", "b", "a")
        ]
        assert added == [True, True, False]
        photos = list_photos(session, owner_id=ALICE, subject_id=subject.id)
        assert [photo.sha256[0] for photo in photos] == ["a", "b"]


def test_forgetting_a_subject_removes_its_rows_and_returns_only_orphaned_files(
    engine: Engine,
) -> None:
    bo = make_subject(engine, owner_id=ALICE, name="Bo")
    mam = make_subject(engine, owner_id=ALICE, name="Mam")
    with session_scope(engine) as session:
        _add_photo(session, owner_id=ALICE, subject_id=bo.id, sha="a")
        _add_photo(session, owner_id=ALICE, subject_id=bo.id, sha="b")
        _add_photo(session, owner_id=ALICE, subject_id=mam.id, sha="b")  # shared file
        record_subject_artifact(
            session,
            owner_id=ALICE,
            subject_id=bo.id,
            artifact_sha256="c" * 64,
            artifact_path="subjects/cc/cc/c.safetensors",
        )
        enqueue_job(session, owner_id=ALICE, subject_id=bo.id)
    with session_scope(engine) as session:
        orphans = delete_subject(session, owner_id=ALICE, subject_id=bo.id)
    assert orphans == [f"photos/aa/aa/{'a' * 64}.jpg", "subjects/cc/cc/c.safetensors"]
    with session_scope(engine) as session:
        assert get_subject_for_owner(session, owner_id=ALICE, subject_id=bo.id) is None
        assert active_job_for_owner(session, owner_id=ALICE) is None
        assert events_after(session, after_id=0) == []
        assert count_photos(session, owner_id=ALICE, subject_id=mam.id) == 1


def test_a_job_runs_from_queue_to_success(engine: Engine) -> None:
    subject = make_subject(engine, owner_id=ALICE)
    with session_scope(engine) as session:
        job = enqueue_job(session, owner_id=ALICE, subject_id=subject.id, total_steps=10, now=T0)
        assert job.id is not None
        job_id = job.id
        # Teaching more photos before the job starts does not queue a second one.
        assert enqueue_job(session, owner_id=ALICE, subject_id=subject.id).id == job_id
        assert queue_position(session, job_id=job_id) == 1
        assert count_active_jobs(session, owner_id=ALICE) == 1
    with session_scope(engine) as session:
        claimed = claim_next_job(session, worker_id="gpu-0", now=at(1))
        assert claimed is not None and claimed.id == job_id
        assert queue_position(session, job_id=job_id) == 0
        assert _subject_status(session, subject.id) == SubjectStatus.TRAINING
    with session_scope(engine) as session:
        progressed = update_job_progress(
            session,
            job_id=job_id,
            worker_id="gpu-0",
            step=4,
            total_steps=10,
            loss=0.5,
            eta_seconds=30.0,
            now=at(5),
        )
        assert (progressed.progress, progressed.heartbeat_at) == (0.4, at(5))
        record_subject_artifact(
            session,
            owner_id=ALICE,
            subject_id=subject.id,
            artifact_sha256="d" * 64,
            artifact_path="subjects/dd/dd/d.safetensors",
            metrics={"weighted": 0.93},
        )
        done = finish_job(session, job_id=job_id, worker_id="gpu-0", status=JobStatus.SUCCEEDED, now=at(9))
        assert (done.status, done.progress, done.step, done.finished_at) == (
            JobStatus.SUCCEEDED,
            1.0,
            10,
            at(9),
        )
    with session_scope(engine) as session:
        reloaded = get_subject_for_owner(session, owner_id=ALICE, subject_id=subject.id)
        assert reloaded is not None
        assert reloaded.status == SubjectStatus.READY
        assert reloaded.metrics == {"weighted": 0.93}
        assert queue_position(session, job_id=job_id) is None
        events = events_after(session, after_id=0)
        assert [e.kind for e in events] == [
            EventKind.STARTED,
            EventKind.PROGRESS,
            EventKind.SUCCEEDED,
        ]
        assert [e.id for e in events] == sorted(e.id or 0 for e in events)
        assert events[1].payload["progress"] == 0.4
        assert events[1].owner_id == ALICE and events[1].subject_id == subject.id
        later = events_after(session, after_id=events[0].id or 0, limit=1)
        assert [e.kind for e in later] == [EventKind.PROGRESS]
        assert latest_event_id(session) == events[-1].id


def test_queue_positions_count_only_jobs_ahead(engine: Engine) -> None:
    first, second, third = make_jobs(engine, 3)
    with session_scope(engine) as session:
        claim_next_job(session, worker_id="w")
    with session_scope(engine) as session:
        assert [queue_position(session, job_id=j) for j in (first, second, third)] == [0, 1, 2]


def test_cancelling_a_queued_job_is_immediate_and_a_running_one_is_flagged(
    engine: Engine,
) -> None:
    running_id, queued_id = make_jobs(engine, 2, owner_id=ALICE)
    with session_scope(engine) as session:
        claim_next_job(session, worker_id="w")
    with session_scope(engine) as session:
        assert request_cancel(session, owner_id=BOB, job_id=queued_id) is None
        queued = request_cancel(session, owner_id=ALICE, job_id=queued_id)
        assert queued is not None and queued.status == JobStatus.CANCELLED
        running = request_cancel(session, owner_id=ALICE, job_id=running_id)
        assert running is not None and running.status == JobStatus.RUNNING
    with session_scope(engine) as session:
        seen_by_worker = heartbeat(session, job_id=running_id, worker_id="w")
        assert seen_by_worker.cancel_requested
        finish_job(session, job_id=running_id, worker_id="w", status=JobStatus.CANCELLED)
        job = get_job_for_owner(session, owner_id=ALICE, job_id=queued_id)
        assert job is not None
        assert _subject_status(session, job.subject_id) == SubjectStatus.FAILED
        assert get_job_for_owner(session, owner_id=BOB, job_id=queued_id) is None


def test_a_worker_that_lost_its_job_is_told_to_stop(engine: Engine) -> None:
    (job_id,) = make_jobs(engine, 1)
    with session_scope(engine) as session:
        claim_next_job(session, worker_id="old", now=T0)
    with session_scope(engine) as session:
        requeue_stale_jobs(session, stale_before=at(60), now=at(120))
        claim_next_job(session, worker_id="new", now=at(121))
    for write in (
        lambda s: heartbeat(s, job_id=job_id, worker_id="old"),
        lambda s: update_job_progress(s, job_id=job_id, worker_id="old", step=1, total_steps=2),
        lambda s: finish_job(s, job_id=job_id, worker_id="old", status=JobStatus.SUCCEEDED),
    ):
        with pytest.raises(JobLost), session_scope(engine) as session:
            write(session)
    with pytest.raises(ValueError, match="finished status"), session_scope(engine) as session:
        finish_job(session, job_id=job_id, worker_id="new", status=JobStatus.RUNNING)


def test_stale_jobs_are_requeued_until_attempts_run_out(engine: Engine) -> None:
    subject = make_subject(engine, owner_id=ALICE)
    with session_scope(engine) as session:
        job = enqueue_job(session, owner_id=ALICE, subject_id=subject.id, max_attempts=2)
        assert job.id is not None
        job_id = job.id
    (healthy_id,) = make_jobs(engine, 1, owner_id=BOB)

    with session_scope(engine) as session:
        claim_next_job(session, worker_id="crashy", now=T0)
        claim_next_job(session, worker_id="healthy", now=T0)
        heartbeat(session, job_id=healthy_id, worker_id="healthy", now=at(100))
        assert requeue_stale_jobs(session, stale_before=at(60), now=at(120)) == ([job_id], [])
        assert _subject_status(session, subject.id) == SubjectStatus.QUEUED

    with session_scope(engine) as session:
        again = claim_next_job(session, worker_id="crashy", now=at(130))
        assert again is not None and (again.id, again.attempts) == (job_id, 2)
        heartbeat(session, job_id=healthy_id, worker_id="healthy", now=at(250))
        assert requeue_stale_jobs(session, stale_before=at(200), now=at(300)) == ([], [job_id])

    with session_scope(engine) as session:
        failed = get_job_for_owner(session, owner_id=ALICE, job_id=job_id)
        assert failed is not None
        assert failed.status == JobStatus.FAILED
        assert failed.error is not None and "stopped responding 2 times" in failed.error
        assert _subject_status(session, subject.id) == SubjectStatus.FAILED
        healthy = get_job_for_owner(session, owner_id=BOB, job_id=healthy_id)
        assert healthy is not None and healthy.status == JobStatus.RUNNING
        kinds = [e.kind for e in events_after(session, after_id=0) if e.job_id == job_id]
        assert kinds == [EventKind.STARTED, EventKind.REQUEUED, EventKind.STARTED, EventKind.FAILED]


def test_old_events_are_purged(engine: Engine) -> None:
    (job_id,) = make_jobs(engine, 1)
    with session_scope(engine) as session:
        claim_next_job(session, worker_id="w", now=T0)
        heartbeat(session, job_id=job_id, worker_id="w", now=at(10))
        finish_job(session, job_id=job_id, worker_id="w", status=JobStatus.FAILED, now=at(10))
    with session_scope(engine) as session:
        assert purge_old_events(session, before=at(5)) == 1
        assert [e.kind for e in events_after(session, after_id=0)] == [EventKind.FAILED]


def _subject_status(session: Session, subject_id: str) -> SubjectStatus:
    return session.get_one(Subject, subject_id, populate_existing=True).status
