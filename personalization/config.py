"""Typed settings of the ML core: frozen dataclasses whose errors name the bad field."""

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from personalization.prompts import DEFAULT_ATTRIBUTE_QUESTIONS

ANSWER_STYLES = ("sentence", "word")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")

Settings = TypeVar("Settings")
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def with_assignments(config: Settings, assignments: Sequence[str]) -> Settings:
    """``config`` (a dataclass) with ``FIELD=VALUE`` assignments applied, each value parsed by its
    field's type (int, float, bool or str; other fields cannot be set this way).

    Example:
        >>> with_assignments(TrainConfig(), ["epochs=3", "text_qa=false"]).epochs
        3

    Raises:
        ValueError: an unknown field, a malformed assignment or a value the field refuses.
    """
    settable = {
        f.name: getattr(f.type, "__name__", f.type)
        for f in fields(config)  # type: ignore[arg-type]
        if getattr(f.type, "__name__", f.type) in ("int", "float", "bool", "str")
    }
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        if not equals or name not in settable:
            known = ", ".join(sorted(settable))
            raise ValueError(f"--set {assignment!r}: expected FIELD=VALUE with FIELD one of {known}")
        kind = settable[name]
        if kind == "bool":
            if text.lower() not in (*_TRUE, *_FALSE):
                raise ValueError(f"--set {assignment!r}: {text!r} is not true or false")
            changes[name] = text.lower() in _TRUE
        elif kind == "str":
            changes[name] = text
        else:
            try:
                changes[name] = int(text) if kind == "int" else float(text)
            except ValueError:
                raise ValueError(f"--set {assignment!r}: {text!r} is not a number") from None
    return replace(config, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class TrainConfig:
    """How one subject is taught (defaults follow the paper, sized for a CPU where noted).

    Attributes:
        epochs: passes over the training conversations (paper: ~15).
        learning_rate: AdamW step size on the subject's vectors (paper: 1e-3).
        batch_size: conversations per step.
        views_per_photo: augmented views of each positive photo (original, mirror, crops).
        zoomed_out_views: further positive views of each photo, shrunk and pasted onto a random
            bank image (:func:`~personalization.images.zoomed_out`), so that the subject is also
            seen small and among other things; needs a negative bank. Not in the paper.
        negative_views: views of each training negative (the original, its mirror, then crops,
            as for positives); each epoch uses one of them, in turn. 1 (the paper's) keeps the
            original only; not in the paper.
        positive_examples: positive conversations per epoch (photos × views × templates, cycled).
        hard_negatives_per_photo: top-m bank images by similarity to each positive photo.
        easy_negatives: random bank images.
        text_qa: train text-only QA made by asking the frozen model about each positive photo.
        attribute_questions: the questions asked for text-only QA; ``{kind}`` is filled in.
        qa_max_new_tokens: answer length cap when generating text-only QA.
        answer_style: how recognition answers are written: ``sentence`` (the paper's: "Yes, <sks>
            is in the photo.") or ``word`` ("Yes" / "No", for a base model that answers yes/no
            questions with one word, as the toy-world model does).
        reading_init: start the latent tokens at the embeddings of what the frozen model most
            often answers to ``attribute_questions`` about the photos (asked even without
            ``text_qa``) instead of at the category word, and keep that start unless an epoch
            validates better; not in the paper.
        holdout_fraction: share of positives (≥ 1 when there are ≥ 3) and negatives kept out of
            training to choose the best epoch and the recognition threshold.
        calibrate_threshold: choose each subject's recognition threshold on the held-out split
            (the best balanced accuracy there); when False it stays at ``recognition_threshold``
            and the held-out split only chooses the epoch.
        recognition_threshold: the P(yes) share above which recognition says yes when thresholds
            are not calibrated (the paper's free "Yes"/"No" answer is 0.5).
        members: how many times the subject is trained, each time from its own start, seed
            (``seed``, ``seed + 1``, …) and held-out split; recognition averages P(yes) over the
            members (an ensemble), free answers use the first. Not in the paper.
        learning_rate_schedule: ``constant`` (the paper's) or ``cosine`` (decays to zero over the
            run, so the last epochs take small steps); not in the paper.
        averaged_epochs: when above 0, the subject keeps the mean of its vectors at the end of the
            last ``averaged_epochs`` epochs instead of the epoch the held-out split chose (which
            then only sets the threshold); not in the paper.
        seed: makes data selection, augmentation and initialisation deterministic.
    """

    epochs: int = 15
    learning_rate: float = 1e-3
    batch_size: int = 8
    views_per_photo: int = 4
    zoomed_out_views: int = 0
    positive_examples: int = 64
    negative_views: int = 1
    hard_negatives_per_photo: int = 20
    easy_negatives: int = 40
    text_qa: bool = True
    attribute_questions: tuple[str, ...] = field(default=DEFAULT_ATTRIBUTE_QUESTIONS)
    qa_max_new_tokens: int = 24
    answer_style: str = "sentence"
    reading_init: bool = False
    holdout_fraction: float = 0.2
    calibrate_threshold: bool = True
    learning_rate_schedule: str = "constant"
    averaged_epochs: int = 0
    recognition_threshold: float = 0.5
    members: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        positive_ints = (
            "epochs",
            "batch_size",
            "views_per_photo",
            "negative_views",
            "positive_examples",
            "qa_max_new_tokens",
            "members",
        )
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("hard_negatives_per_photo", "easy_negatives", "zoomed_out_views"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must not be negative, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate}")
        if self.answer_style not in ANSWER_STYLES:
            raise ValueError(
                f"TrainConfig.answer_style must be one of {', '.join(ANSWER_STYLES)}, "
                f"got {self.answer_style!r}"
            )
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(
                f"TrainConfig.learning_rate_schedule must be one of {', '.join(LEARNING_RATE_SCHEDULES)}, "
                f"got {self.learning_rate_schedule!r}"
            )
        if not 0 <= self.averaged_epochs <= self.epochs:
            raise ValueError(
                f"TrainConfig.averaged_epochs must be between 0 and epochs ({self.epochs}), "
                f"got {self.averaged_epochs}"
            )
        if not 0 < self.recognition_threshold < 1:
            raise ValueError(
                f"TrainConfig.recognition_threshold must be between 0 and 1, got {self.recognition_threshold}"
            )
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"TrainConfig.holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
