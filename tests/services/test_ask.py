"""Ask: which subject a question means, what the model is sent, and how refusals read."""

import socket

import pytest
from sqlalchemy.engine import Engine

from bot.services.api import (
    AmbiguousSubject,
    InvalidPhoto,
    InvalidQuestion,
    Services,
    SubjectNotReady,
    UnknownSubject,
    WorkerUnavailable,
)
from bot.services.model_client import FixedEndpoint, HttpModelClient, WorkerRefused
from bot.worker.protocol import AnswerReply
from storage import FileStore, JobStatus, claim_next_job, finish_job, record_subject_artifact, session_scope
from tests.services.support import FakeModel, other_photo, uploads


def _train(db: Engine, *, owner_id: int, subject_id: str) -> None:
    """What a worker does on success, without a model."""
    with session_scope(db) as session:
        job = claim_next_job(session, worker_id="w")
        assert job is not None and job.id is not None
        record_subject_artifact(
            session,
            owner_id=owner_id,
            subject_id=subject_id,
            artifact_sha256="a" * 64,
            artifact_path=f"subjects/aa/aa/{subject_id}.safetensors",
            metrics={"summary": "recognised 1/1"},
        )
        finish_job(session, job_id=job.id, worker_id="w", status=JobStatus.SUCCEEDED)


async def test_name_in_question_picks_the_subject(services: Services, model: FakeModel, db: Engine) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    _train(db, owner_id=1, subject_id=bo.subject_id)

    result = await services.ask(user_id=1, question="what colour is BO's collar?")

    [sent] = model.answers
    assert [ref.subject_id for ref in sent.subjects] == [bo.subject_id]
    assert sent.subjects[0].artifact_path is not None and sent.image is None
    assert result.subjects == ["Bo"] and result.note is None and result.text == "A fake answer."


async def test_my_kind_is_rewritten_to_the_name(services: Services, model: FakeModel, db: Engine) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    _train(db, owner_id=1, subject_id=bo.subject_id)
    await services.ask(user_id=1, question="Is my dog in this photo?", image=other_photo())
    [sent] = model.answers
    assert sent.question == "Is Bo in this photo?" and sent.image is not None


async def test_my_kind_with_two_of_that_kind_asks_which(services: Services, db: Engine) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    _train(db, owner_id=1, subject_id=bo.subject_id)
    rex = await services.teach(user_id=1, name="Rex", kind="dog", photos=uploads(3, first_seed=10))
    _train(db, owner_id=1, subject_id=rex.subject_id)
    with pytest.raises(AmbiguousSubject) as refused:
        await services.ask(user_id=1, question="Is my dog here?")
    assert refused.value.candidates == ["Bo", "Rex"]
    assert refused.value.user_message == "Which one do you mean: Bo or Rex?"


async def test_explicit_subject_wins(services: Services, model: FakeModel, db: Engine) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    _train(db, owner_id=1, subject_id=bo.subject_id)
    await services.ask(user_id=1, question="Who is this?", subject="bo")
    assert [ref.name for ref in model.answers[0].subjects] == ["Bo"]
    with pytest.raises(UnknownSubject):
        await services.ask(user_id=1, question="Who is this?", subject="Rex")


async def test_no_subject_named_answers_without_personal_tokens(services: Services, model: FakeModel) -> None:
    await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    result = await services.ask(user_id=1, question="What is the capital of France?")
    assert model.answers[0].subjects == [] and result.subjects == [] and result.note is None


async def test_untrained_subject_answers_with_a_note(services: Services, model: FakeModel) -> None:
    await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    result = await services.ask(user_id=1, question="What does Bo like?")
    assert model.answers[0].subjects[0].artifact_path is None
    assert result.note is not None and "Bo is still training (#1 in the queue)" in result.note


async def test_retraining_subject_answers_from_the_previous_training(
    services: Services, db: Engine, model: FakeModel
) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    _train(db, owner_id=1, subject_id=bo.subject_id)
    await services.teach(user_id=1, name="Bo", photos=uploads(1, first_seed=40))
    result = await services.ask(user_id=1, question="Is Bo here?", image=other_photo())
    assert result.note is not None and "being retrained" in result.note
    assert model.answers[0].subjects[0].artifact_path is not None


async def test_recognition_of_an_untrained_subject_is_refused_clearly(
    services: Services, model: FakeModel
) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    model.error = WorkerRefused("not_trained", "not trained", [bo.subject_id])
    with pytest.raises(SubjectNotReady) as refused:
        await services.ask(user_id=1, question="Is Bo in this photo?", image=other_photo())
    assert "Bo is still training (#1 in the queue)" in refused.value.user_message


async def test_failed_first_training_is_refused(services: Services, db: Engine) -> None:
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    with session_scope(db) as session:
        job = claim_next_job(session, worker_id="w")
        assert job is not None and job.id is not None
        finish_job(session, job_id=job.id, worker_id="w", status=JobStatus.FAILED, error="Out of memory.")
    with pytest.raises(SubjectNotReady, match="teach it again"):
        await services.ask(user_id=1, question="Is Bo here?", subject=bo.subject_id)


async def test_bad_questions_and_images_are_refused(services: Services) -> None:
    with pytest.raises(InvalidQuestion):
        await services.ask(user_id=1, question="   ")
    with pytest.raises(InvalidQuestion):
        await services.ask(user_id=1, question="why? " * 500)
    with pytest.raises(InvalidPhoto):
        await services.ask(user_id=1, question="What is this?", image=b"GIF89a broken")


async def test_recognize_all_scores_only_trained_subjects(
    services: Services, db: Engine, model: FakeModel
) -> None:
    assert await services.recognize_all(user_id=1, image=other_photo()) == []
    bo = await services.teach(user_id=1, name="Bo", kind="dog", photos=uploads(3))
    _train(db, owner_id=1, subject_id=bo.subject_id)
    await services.teach(user_id=2, name="Rex", kind="dog", photos=uploads(3, first_seed=10))
    hits = await services.recognize_all(user_id=1, image=other_photo())
    assert [(hit.subject, hit.present) for hit in hits] == [("Bo", True)]
    assert [ref.name for ref in model.recognitions[0].subjects] == ["Bo"]


async def test_a_dead_worker_is_reported_not_raised(db: Engine, files: FileStore) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for endpoint in (FixedEndpoint(f"http://127.0.0.1:{port}"), FixedEndpoint(None)):
        services = Services(db=db, files=files, model=HttpModelClient(endpoint, timeout_seconds=5))
        with pytest.raises(WorkerUnavailable):
            await services.ask(user_id=1, question="Hello?")
        report = await services.status(user_id=1)
        assert report.workers[0].alive is False
        await services.close()


async def test_answer_text_and_flag_come_from_the_model(services: Services, model: FakeModel) -> None:
    model.reply = AnswerReply(text="Yes, Bo is in the photo.", is_recognition=True)
    result = await services.ask(user_id=1, question="Is Bo in this photo?", image=other_photo())
    assert result.is_recognition and result.text.startswith("Yes")
