"""The wire format between the bot process and the worker's HTTP server (torch-free).

Transport: JSON over HTTP/1.1 on 127.0.0.1 (aiohttp on both ends). Why HTTP rather than a pipe or
a queue table: an answer is a request/response the user is waiting for, so it should not pass
through a polled table; HTTP gives timeouts, concurrent requests, a health check and clean
connection-refused errors when the worker is dead (which the bot turns into WorkerUnavailable
without ever blocking), and the same protocol reaches a worker on another machine. Images travel
base64-encoded in the JSON body: they are already validated and capped (≤ 10 MiB) by the bot.

Every request carries ``X-Yollava-Token`` when the worker was started with a token (the local
supervisor always sets one), so other local users cannot query the model.

Endpoints:
    ``GET  /v1/health``    → :class:`Health`
    ``POST /v1/answer``    :class:`AnswerRequest` → :class:`AnswerReply`
    ``POST /v1/recognize`` :class:`RecognizeRequest` → :class:`RecognizeReply`
Errors come back as HTTP 4xx/5xx with ``{"error": code, "message": sentence}``; see
:class:`ErrorCode`.
"""

import base64
import enum
from dataclasses import asdict, dataclass, field
from typing import Any

TOKEN_HEADER = "X-Yollava-Token"
TOKEN_ENV = "YOLLAVA_WORKER_TOKEN"
READY_LINE_PREFIX = "yollava-worker ready "


class ErrorCode(enum.StrEnum):
    """Why the worker refused a request."""

    BAD_REQUEST = "bad_request"  # malformed JSON or image
    UNAUTHORIZED = "unauthorized"
    ARTIFACT = "artifact"  # a subject file is missing or made for another model
    NOT_TRAINED = "not_trained"  # recognition asked about a subject with no trained tokens
    INTERNAL = "internal"


@dataclass(frozen=True)
class SubjectRef:
    """A subject as the worker needs it: its trained file (if any) and the owner's words.

    ``artifact_path`` is relative to the shared data directory; None means "not trained yet" and
    the worker uses fresh, untrained tokens initialised from ``kind``.
    """

    subject_id: str
    name: str
    kind: str
    facts: str = ""
    artifact_path: str | None = None
    artifact_sha256: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SubjectRef":
        return cls(
            subject_id=str(data["subject_id"]),
            name=str(data["name"]),
            kind=str(data["kind"]),
            facts=str(data.get("facts") or ""),
            artifact_path=_optional_str(data.get("artifact_path")),
            artifact_sha256=_optional_str(data.get("artifact_sha256")),
        )


@dataclass(frozen=True)
class AnswerRequest:
    """Answer ``question`` about ``subjects`` (and the image, if given)."""

    question: str
    subjects: list[SubjectRef] = field(default_factory=list)
    image: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "subjects": [asdict(s) for s in self.subjects],
            "image_b64": _encode(self.image),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AnswerRequest":
        return cls(
            question=str(data["question"]),
            subjects=[SubjectRef.from_json(s) for s in data.get("subjects", [])],
            image=_decode(data.get("image_b64")),
        )


@dataclass(frozen=True)
class AnswerReply:
    """The answer; ``is_recognition`` when it is a calibrated yes/no."""

    text: str
    is_recognition: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AnswerReply":
        return cls(text=str(data["text"]), is_recognition=bool(data["is_recognition"]))


@dataclass(frozen=True)
class RecognizeRequest:
    """Score each of ``subjects`` (all trained) against one image."""

    image: bytes
    subjects: list[SubjectRef]

    def to_json(self) -> dict[str, Any]:
        return {"image_b64": _encode(self.image), "subjects": [asdict(s) for s in self.subjects]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RecognizeRequest":
        image = _decode(data.get("image_b64"))
        if image is None:
            raise ValueError("image_b64 is required")
        return cls(image=image, subjects=[SubjectRef.from_json(s) for s in data.get("subjects", [])])


@dataclass(frozen=True)
class Score:
    """One subject's recognition: P(yes) / (P(yes) + P(no)) and its own threshold's verdict."""

    subject_id: str
    probability: float
    present: bool


@dataclass(frozen=True)
class RecognizeReply:
    scores: list[Score]

    def to_json(self) -> dict[str, Any]:
        return {"scores": [asdict(s) for s in self.scores]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RecognizeReply":
        return cls(
            scores=[
                Score(str(s["subject_id"]), float(s["probability"]), bool(s["present"]))
                for s in data["scores"]
            ]
        )


@dataclass(frozen=True)
class Health:
    """What the worker says about itself."""

    worker_id: str
    model: str
    device: str
    pid: int
    current_job_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Health":
        job = data.get("current_job_id")
        return cls(
            worker_id=str(data["worker_id"]),
            model=str(data["model"]),
            device=str(data["device"]),
            pid=int(data["pid"]),
            current_job_id=None if job is None else int(job),
        )


def _encode(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _decode(text: Any) -> bytes | None:
    if text is None:
        return None
    return base64.b64decode(str(text), validate=True)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
