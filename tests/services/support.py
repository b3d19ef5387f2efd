"""Test doubles and builders shared by the services and worker tests."""

import io
from pathlib import Path

from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.services.api import PhotoUpload
from bot.worker.protocol import (
    AnswerReply,
    AnswerRequest,
    Health,
    RecognizeReply,
    RecognizeRequest,
    Score,
)
from storage import Photo, Subject, TrainingJob, User, session_scope
from tests.conftest import OTHER_COLOURS, SUBJECT_COLOUR, make_photo


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def uploads(
    count: int = 3, *, colour: tuple[int, int, int] = SUBJECT_COLOUR, first_seed: int = 0
) -> list[PhotoUpload]:
    """``count`` distinct photos of one subject, as a user would upload them."""
    return [
        PhotoUpload(f"photo{seed}.png", png(make_photo(colour, seed)))
        for seed in range(first_seed, first_seed + count)
    ]


def other_photo(seed: int = 900) -> bytes:
    return png(make_photo(OTHER_COLOURS[0], seed))


class FakeModel:
    """A :class:`ModelClient` that records requests and answers from a script."""

    def __init__(self) -> None:
        self.answers: list[AnswerRequest] = []
        self.recognitions: list[RecognizeRequest] = []
        self.wakes = 0
        self.error: Exception | None = None
        self.reply = AnswerReply(text="A fake answer.", is_recognition=False)

    async def answer(self, request: AnswerRequest) -> AnswerReply:
        self.answers.append(request)
        if self.error is not None:
            raise self.error
        return self.reply

    async def recognize(self, request: RecognizeRequest) -> RecognizeReply:
        self.recognitions.append(request)
        if self.error is not None:
            raise self.error
        return RecognizeReply(
            scores=[Score(ref.subject_id, 0.9 - 0.1 * n, n == 0) for n, ref in enumerate(request.subjects)]
        )

    async def health(self) -> Health | None:
        return Health(worker_id="fake", model="fake-model", device="cpu", pid=1)

    async def wake(self) -> None:
        self.wakes += 1

    async def close(self) -> None:
        return None


def stored_files(root: Path) -> list[Path]:
    """Every file under the file store's root (temporary files included)."""
    return sorted(path for path in root.rglob("*") if path.is_file())


def row_counts(db: Engine) -> dict[str, int]:
    with session_scope(db) as session:
        return {
            "user": len(session.exec(select(User.id)).all()),
            "subject": len(session.exec(select(Subject.id)).all()),
            "photo": len(session.exec(select(Photo.id)).all()),
            "job": len(session.exec(select(TrainingJob.id)).all()),
        }
