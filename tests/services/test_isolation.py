"""Isolation: another user can never see, ask about, train, cancel or forget your subject."""

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import Services, UnknownSubject
from storage import FileStore
from tests.services.support import FakeModel, stored_files, uploads

ALICE, BOB = 1, 2


async def test_users_cannot_reach_each_others_subjects(
    services: Services, model: FakeModel, db: Engine, files: FileStore
) -> None:
    alices = await services.teach(user_id=ALICE, name="Bo", kind="dog", photos=uploads(3))

    assert await services.list_subjects(user_id=BOB) == []
    assert await services.subject_names(user_id=BOB, prefix="b") == []
    assert (await services.status(user_id=BOB)).jobs == []
    with pytest.raises(UnknownSubject) as unknown:
        await services.ask(user_id=BOB, question="Is Bo here?", subject="Bo")
    assert "of yours" in unknown.value.user_message
    with pytest.raises(UnknownSubject):
        await services.ask(user_id=BOB, question="Is Bo here?", subject=alices.subject_id)
    await services.ask(user_id=BOB, question="Is Bo in this photo?")
    assert model.answers[-1].subjects == [], "Alice's Bo must not be used for Bob's question"
    assert await services.cancel(user_id=BOB, job_id=alices.job_id) is False
    with pytest.raises(UnknownSubject):
        await services.forget(user_id=BOB, name="Bo")
    await services.forget(user_id=BOB, name="all")

    [still] = await services.list_subjects(user_id=ALICE)
    assert still.subject_id == alices.subject_id and still.photo_count == 3
    assert len(stored_files(files.root)) == 3


async def test_same_name_for_two_users_stays_apart(
    services: Services, model: FakeModel, files: FileStore
) -> None:
    alices = await services.teach(user_id=ALICE, name="Bo", kind="dog", photos=uploads(3))
    # Bob's Bo even shares one photo (same bytes) with Alice's.
    bobs = await services.teach(user_id=BOB, name="bo", kind="cat", photos=uploads(3, first_seed=2))
    assert bobs.is_new_subject and bobs.subject_id != alices.subject_id
    assert len(stored_files(files.root)) == 5

    await services.ask(user_id=BOB, question="What does Bo eat?")
    assert [ref.subject_id for ref in model.answers[-1].subjects] == [bobs.subject_id]
    assert await services.subject_names(user_id=BOB) == ["bo"]

    await services.forget(user_id=BOB, name="Bo")
    [alice_bo] = await services.list_subjects(user_id=ALICE)
    assert alice_bo.photo_count == 3 and len(alice_bo.thumbnails) == 3, "shared photo file must survive"
    assert len(stored_files(files.root)) == 3
