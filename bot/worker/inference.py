"""Answers and recognition for the bot, on the worker's one model, ahead of any training.

Blocking (torch) code: the HTTP server calls it through ``asyncio.to_thread``. Each request
holds the :class:`PriorityGate` as *interactive*, so a running training pauses at its next step
boundary and resumes afterwards.
"""

from PIL import Image

from bot.worker.gate import PriorityGate
from bot.worker.protocol import (
    AnswerReply,
    AnswerRequest,
    ErrorCode,
    RecognizeReply,
    RecognizeRequest,
    Score,
)
from bot.worker.subjects import SubjectCache
from personalization.engine import Engine
from personalization.errors import ArtifactError, ImageError
from personalization.images import load_image
from personalization.prompts import is_recognition_question
from personalization.subject import Subject
from storage.errors import UnsafePath


class RequestRefused(Exception):
    """The request cannot be served; ``code`` says why, the message is for the user."""

    def __init__(self, code: ErrorCode, message: str, *, subject_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.subject_ids = subject_ids or []


class Answerer:
    """Serves :class:`AnswerRequest` and :class:`RecognizeRequest` on ``engine``."""

    def __init__(self, engine: Engine, subjects: SubjectCache, gate: PriorityGate) -> None:
        self.engine = engine
        self.cache = subjects
        self.gate = gate

    def answer(self, request: AnswerRequest) -> AnswerReply:
        """A calibrated yes/no for "is X in this photo?", a free answer otherwise.

        Raises:
            RequestRefused: unreadable image (BAD_REQUEST), bad subject file (ARTIFACT), or a
                recognition question about an untrained subject (NOT_TRAINED).
        """
        image = _image(request.image) if request.image is not None else None
        recognition = (
            image is not None and bool(request.subjects) and is_recognition_question(request.question)
        )
        if recognition:
            untrained = [ref for ref in request.subjects if ref.artifact_path is None]
            if untrained:
                names = ", ".join(ref.name for ref in untrained)
                raise RequestRefused(
                    ErrorCode.NOT_TRAINED,
                    f"{names} has not finished training, so I can't recognise it yet.",
                    subject_ids=[ref.subject_id for ref in untrained],
                )
        with self.gate.interactive():
            subjects = _load(self.cache, request)
            text = self.engine.respond(request.question, image=image, subjects=subjects)
        return AnswerReply(text=text, is_recognition=recognition)

    def recognize(self, request: RecognizeRequest) -> RecognizeReply:
        """Each subject's recognition score on one image (vision features computed once)."""
        untrained = [ref.subject_id for ref in request.subjects if ref.artifact_path is None]
        if untrained:
            raise RequestRefused(
                ErrorCode.NOT_TRAINED, "only trained subjects can be recognised", subject_ids=untrained
            )
        image = _image(request.image)
        if not request.subjects:
            return RecognizeReply(scores=[])
        with self.gate.interactive():
            subjects = _load(self.cache, request)
            results = self.engine.recognize_all(image, subjects)
        return RecognizeReply(
            scores=[
                Score(ref.subject_id, float(result.probability), bool(result.present))
                for ref, result in zip(request.subjects, results, strict=True)
            ]
        )


def _image(data: bytes | None) -> Image.Image:
    try:
        return load_image(data or b"", label="the image")
    except ImageError as error:
        raise RequestRefused(ErrorCode.BAD_REQUEST, str(error)) from error


def _load(cache: SubjectCache, request: AnswerRequest | RecognizeRequest) -> list[Subject]:
    try:
        return cache.subjects(request.subjects)
    except (ArtifactError, UnsafePath) as error:
        raise RequestRefused(ErrorCode.ARTIFACT, str(error)) from error
