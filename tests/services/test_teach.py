"""Teach: photos validated by content, stored once, a job queued; every quota a typed refusal."""

import dataclasses

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import (
    InvalidName,
    InvalidPhoto,
    JobAlreadyQueued,
    NoNewPhotos,
    PhotoUpload,
    QueueFull,
    ServiceLimits,
    Services,
    TooFewPhotos,
    TooManyPhotos,
    TooManySubjects,
)
from storage import FileStore, claim_next_job, list_jobs, list_photos, session_scope
from tests.services.support import FakeModel, row_counts, stored_files, uploads


async def test_teach_stores_photos_and_queues_training(
    services: Services, db: Engine, files: FileStore, model: FakeModel
) -> None:
    receipt = await services.teach(user_id=1, name="  Bo ", kind="Dog", photos=uploads(4), facts="Bo is 3.")

    assert receipt.display_name == "Bo" and receipt.is_new_subject
    assert (receipt.photos_added, receipt.total_photos, receipt.queue_position) == (4, 4, 1)
    assert receipt.photos_skipped == []
    with session_scope(db) as session:
        photos = list_photos(session, owner_id=1, subject_id=receipt.subject_id)
        jobs = list_jobs(session, owner_id=1)
    assert len(photos) == 4 and all(files.exists(photo.path) for photo in photos)
    assert [(job.id, job.status.value) for job in jobs] == [(receipt.job_id, "queued")]
    assert model.wakes == 1
    [summary] = await services.list_subjects(user_id=1)
    assert (summary.name, summary.kind, summary.status, summary.photo_count) == ("Bo", "dog", "queued", 4)
    assert summary.facts == "Bo is 3." and len(summary.thumbnails) == 4
    assert summary.job is not None and summary.job.queue_position == 1


async def test_queue_position_counts_other_users_jobs(services: Services) -> None:
    await services.teach(user_id=1, name="Bo", photos=uploads(3))
    second = await services.teach(user_id=2, name="Rex", photos=uploads(3, first_seed=10))
    assert second.queue_position == 2


async def test_duplicates_are_skipped_and_reported(services: Services, files: FileStore) -> None:
    photos = uploads(3)
    twice = [*photos, PhotoUpload("copy.png", photos[0].data)]
    receipt = await services.teach(user_id=1, name="Bo", photos=twice)
    assert receipt.photos_added == 3 and len(receipt.photos_skipped) == 1
    assert "copy.png" in receipt.photos_skipped[0]

    again = await services.teach(user_id=1, name="bo", photos=[*uploads(1, first_seed=20), photos[1]])
    assert again.job_id == receipt.job_id, "photos for a subject still queued join its job"
    assert (again.photos_added, again.total_photos, again.is_new_subject) == (1, 4, False)
    assert "already one of Bo's photos" in again.photos_skipped[0]
    assert len(stored_files(files.root)) == 4

    with pytest.raises(NoNewPhotos):
        await services.teach(user_id=1, name="Bo", photos=photos)


async def test_one_bad_photo_stores_nothing(services: Services, db: Engine, files: FileStore) -> None:
    bad = [
        *uploads(3),
        PhotoUpload("notes.png", b"this is text, not a picture"),
        PhotoUpload("empty.jpg", b""),
    ]
    with pytest.raises(InvalidPhoto) as refused:
        await services.teach(user_id=1, name="Bo", photos=bad)
    assert len(refused.value.reasons) == 2
    assert "notes.png" in refused.value.user_message and "empty.jpg" in refused.value.user_message
    assert stored_files(files.root) == []
    assert row_counts(db) == {"user": 0, "subject": 0, "photo": 0, "job": 0}


async def test_photo_count_limits(services: Services, limits: ServiceLimits) -> None:
    with pytest.raises(TooFewPhotos):
        await services.teach(user_id=1, name="Bo", photos=uploads(2))
    with pytest.raises(TooFewPhotos):  # three uploads, but only two different photos
        two = uploads(2)
        await services.teach(user_id=1, name="Bo", photos=[*two, two[0]])
    with pytest.raises(TooManyPhotos):
        await services.teach(user_id=1, name="Bo", photos=uploads(limits.max_photos_per_teach + 1))


async def test_photos_per_subject_limit(db: Engine, files: FileStore, model: FakeModel) -> None:
    limits = ServiceLimits(max_photos_per_teach=4, max_photos_per_subject=5)
    services = Services(db=db, files=files, model=model, limits=limits)
    await services.teach(user_id=1, name="Bo", photos=uploads(4))
    with pytest.raises(TooManyPhotos) as refused:
        await services.teach(user_id=1, name="Bo", photos=uploads(2, first_seed=10))
    assert refused.value.existing == 4 and "at most 1 more" in refused.value.user_message


async def test_one_active_job_per_user(services: Services, db: Engine) -> None:
    first = await services.teach(user_id=1, name="Bo", photos=uploads(3))
    with pytest.raises(JobAlreadyQueued) as refused:
        await services.teach(user_id=1, name="Rex", photos=uploads(3, first_seed=10))
    assert refused.value.job_id == first.job_id and "Bo" in refused.value.user_message

    with session_scope(db) as session:
        claim_next_job(session, worker_id="w")
    with pytest.raises(JobAlreadyQueued):  # a running training does not take more photos
        await services.teach(user_id=1, name="Bo", photos=uploads(1, first_seed=30))


async def test_subject_quota_and_global_queue_cap(db: Engine, files: FileStore, model: FakeModel) -> None:
    limits = ServiceLimits(max_subjects_per_user=1, max_queue_length=2)
    services = Services(db=db, files=files, model=model, limits=limits)
    await services.teach(user_id=1, name="Bo", photos=uploads(3))
    await services.cancel(user_id=1, job_id=1)
    with pytest.raises(TooManySubjects):
        await services.teach(user_id=1, name="Rex", photos=uploads(3, first_seed=10))
    await services.teach(user_id=2, name="A", photos=uploads(3, first_seed=20))
    await services.teach(user_id=3, name="B", photos=uploads(3, first_seed=30))
    with pytest.raises(QueueFull):
        await services.teach(user_id=4, name="C", photos=uploads(3, first_seed=40))


@pytest.mark.parametrize("name", ["", "   ", "all", "ALL", "x" * 101])
async def test_bad_names_are_refused(services: Services, name: str) -> None:
    with pytest.raises(InvalidName):
        await services.teach(user_id=1, name=name, photos=uploads(3))


def test_limits_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match="max_queue_length"):
        ServiceLimits(max_queue_length=0)
    with pytest.raises(ValueError, match="min_photos_per_teach"):
        ServiceLimits(min_photos_per_teach=11)
    assert dataclasses.replace(ServiceLimits(), max_subjects_per_user=3).max_subjects_per_user == 3
