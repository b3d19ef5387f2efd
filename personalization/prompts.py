"""Prompts and conversations: the personal prompt, recognition templates, text-only QA.

Text is built with subjects' *token names* (``<bo-3fa2c1>``); :class:`PromptEncoder` then turns
it into ids, mapping each token name to a slot of the forward pass's :class:`SubjectTable`.

Anything a person typed (a question, a subject's facts) goes through :func:`sanitize_user_text`
first, so it can never smuggle in template markup, the image token, slot tokens or another
subject's token names.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personalization.errors import SubjectError
from personalization.splice import IGNORE_INDEX, SplicedModel, SubjectTable
from personalization.subject import Subject

# Recognition questions used in training; the first is the evaluation question (paper protocol).
RECOGNITION_QUESTIONS = (
    "Is {name} in this photo?",
    "Can you see {name} in this image?",
    "Does this picture show {name}?",
    "Is {name} anywhere in this picture?",
    "Do you spot {name} here?",
    "Is {name} visible in this photo?",
)
EVAL_RECOGNITION_QUESTION = RECOGNITION_QUESTIONS[0]

# Every positive answer starts with "Yes" and every negative with "No": recognition reads the
# first answer token.
POSITIVE_ANSWERS = (
    "Yes, {name} is in the photo.",
    "Yes, I can see {name} here.",
    "Yes, this is {name}.",
    "Yes, {name} appears in this image.",
    "Yes, that is {name} in the picture.",
    "Yes, {name} is right there.",
    "Yes, the photo shows {name}.",
    "Yes, I recognise {name}.",
    "Yes, {name} is visible in this picture.",
    "Yes, this image includes {name}.",
    "Yes, {name} is present.",
    "Yes, it is {name}.",
    "Yes, {name} can be seen here.",
    "Yes, there is {name}.",
    "Yes, {name} is in this picture.",
    "Yes, I see {name} in the photo.",
    "Yes, {name} shows up in this image.",
    "Yes, you can see {name} here.",
    "Yes, {name} is pictured.",
    "Yes, this photo has {name} in it.",
    "Yes, {name} is the one in the picture.",
    "Yes, {name} is here.",
)
NEGATIVE_ANSWERS = (
    "No, {name} is not in the photo.",
    "No, I cannot see {name} here.",
    "No, this is not {name}.",
    "No, {name} does not appear in this image.",
    "No, that is not {name}.",
    "No, {name} is not there.",
    "No, the photo does not show {name}.",
    "No, I do not see {name} in this picture.",
    "No, {name} is not visible here.",
    "No, this image does not include {name}.",
    "No, {name} is absent.",
    "No, it is not {name}.",
    "No, {name} cannot be seen here.",
    "No, there is no {name} here.",
    "No, {name} is not in this picture.",
    "No, this is someone or something else, not {name}.",
    "No, {name} does not show up in this image.",
    "No, you cannot see {name} here.",
    "No, {name} is not pictured.",
    "No, this photo does not have {name} in it.",
    "No, the one in the picture is not {name}.",
    "No, {name} is not here.",
)

# Attribute questions asked of the frozen base model about each positive photo (the paper's
# text-only QA recipe). ``{kind}`` is the subject's category word.
DEFAULT_ATTRIBUTE_QUESTIONS = (
    "What color is the {kind}?",
    "What shape is the {kind}?",
    "What is the {kind} made of or covered with?",
    "What pattern or markings does the {kind} have?",
    "How big is the {kind}?",
    "What is the {kind} wearing or carrying?",
    "What is the most distinctive feature of the {kind}?",
    "What texture does the {kind} have?",
    "Describe the {kind} in a few words.",
    "What is around the {kind}'s neck or head?",
)

_TOKEN_LIKE = re.compile(r"<\|?[^<>\s]{1,64}\|?>")
_ROLE_MARKER = re.compile(r"\b(USER|ASSISTANT|SYSTEM)\s*:", re.IGNORECASE)


def sanitize_user_text(text: str) -> str:
    """Neutralise anything in user text that the model could read as markup.

    Token-like spans (``<image>``, ``</s>``, ``<|yollava_slot_3|>``, ``<bo-3fa2c1>``) get
    look-alike angle quotes; role markers lose their colon. Ordinary text is untouched.

    >>> sanitize_user_text("USER: hi <image>")
    'USER - hi ‹image›'
    """
    text = _TOKEN_LIKE.sub(lambda match: "‹" + match.group(0)[1:-1] + "›", text)
    return _ROLE_MARKER.sub(lambda match: match.group(1) + " -", text)


def _name_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)


def mentions(text: str, subject: Subject) -> bool:
    """Whether ``text`` names ``subject`` by display name (case-insensitive, whole word)."""
    return bool(_name_pattern(subject.display_name).search(text))


def personalize(text: str, subjects: Sequence[Subject]) -> str:
    """Sanitize user text, then write each subject's identifier where the text names it.

    A subject is named by its display name (whole word, any case) or, failing that, by
    "my/your/the <kind>". Longer names are replaced first so "Bo Jr" wins over "Bo".
    """
    text = sanitize_user_text(text)
    for subject in sorted(subjects, key=lambda s: len(s.display_name), reverse=True):
        pattern = _name_pattern(subject.display_name)
        if pattern.search(text):
            text = pattern.sub(subject.identifier.replace("\\", "\\\\"), text)
            continue
        by_kind = re.compile(r"\b(my|your|the|our)\s+" + re.escape(subject.kind) + r"\b", re.IGNORECASE)
        text = by_kind.sub(subject.identifier, text, count=1)
    return text


def personal_prompt(subject: Subject) -> str:
    """``<sks> is <t1>…<tk>.`` plus the owner's facts, with names mapped to the identifier."""
    prompt = f"{subject.identifier} is {''.join(subject.latent_names)}."
    if subject.k == 0:
        prompt = f"{subject.identifier} is a {sanitize_user_text(subject.kind)}."
    if subject.facts:
        prompt += " " + personalize(subject.facts, [subject])
    return prompt


def fill(template: str, subject: Subject) -> str:
    return template.format(name=subject.identifier, kind=subject.kind)


@dataclass
class Encoded:
    """Token ids and labels (``IGNORE_INDEX`` on prompt positions) of one conversation."""

    input_ids: list[int]
    labels: list[int]

    @property
    def prompt_length(self) -> int:
        return next((i for i, label in enumerate(self.labels) if label != IGNORE_INDEX), len(self.labels))


class PromptEncoder:
    """Turns user turns and answers into ids for :class:`SplicedModel`, in LLaVA-1.5 chat form."""

    def __init__(self, spliced: SplicedModel) -> None:
        self.spliced = spliced
        self.tokenizer = spliced.tokenizer
        self.processor = spliced.loaded.processor
        self.image_token = str(self.processor.image_token)
        self.image_token_count = self._image_token_count()

    def _image_token_count(self) -> int:
        processor = self.processor
        crop = processor.image_processor.crop_size
        patch = int(processor.patch_size)
        count = (int(crop["height"]) // patch) * (int(crop["width"]) // patch)
        count += int(getattr(processor, "num_additional_image_tokens", 0) or 0)
        if getattr(processor, "vision_feature_select_strategy", None) == "default":
            count -= 1
        return count

    def user_turn(self, text: str, *, with_image: bool) -> str:
        """The chat-formatted prompt up to and including ``ASSISTANT:``."""
        content: list[dict[str, Any]] = [{"type": "image"}] if with_image else []
        content.append({"type": "text", "text": text})
        rendered = self.processor.apply_chat_template(
            [{"role": "user", "content": content}],  # type: ignore[arg-type]
            add_generation_prompt=True,
            tokenize=False,
        )
        return str(rendered)

    def _slotted(self, text: str, table: SubjectTable) -> str:
        for subject in table.subjects:
            for row, name in zip(table.slot_rows(subject), subject.token_names, strict=True):
                text = text.replace(name, self.spliced.slot_token(row))
        return text

    def _ids(self, text: str) -> list[int]:
        text = text.replace(self.image_token, self.image_token * self.image_token_count)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, prompt: str, answer: str | None, table: SubjectTable) -> Encoded:
        """Encode ``prompt`` (from :meth:`user_turn`) and an optional ``answer`` (+ end of sequence).

        The answer is tokenized as a continuation of the prompt, so its first token is the one the
        model predicts after ``ASSISTANT:``.
        """
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        prompt_text = self._slotted(prompt, table)
        prompt_ids = bos + self._ids(prompt_text)
        if answer is None:
            return Encoded(prompt_ids, [IGNORE_INDEX] * len(prompt_ids))
        answer_text = self._slotted(" " + answer, table)
        full_ids = bos + self._ids(prompt_text + answer_text)
        if full_ids[: len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids):
            answer_ids = full_ids[len(prompt_ids) :]
        else:
            answer_ids = self._ids(answer_text)
        answer_ids.append(int(self.tokenizer.eos_token_id))
        labels = [IGNORE_INDEX] * len(prompt_ids) + [self.spliced.to_vocab_label(i) for i in answer_ids]
        return Encoded(prompt_ids + answer_ids, labels)

    def answer_start_token(self, word: str) -> int:
        """The first answer token of an answer beginning with ``word`` (e.g. ``Yes``)."""
        probe = self.user_turn("probe", with_image=False)
        encoded = self.encode(probe, word, SubjectTable.of([]))
        return encoded.input_ids[encoded.prompt_length]

    def decode(self, ids: Sequence[int], table: SubjectTable) -> str:
        """Text of generated ids with each subject's identifier shown as its display name."""
        special = {
            self.tokenizer.eos_token_id,
            self.tokenizer.bos_token_id,
            self.tokenizer.pad_token_id,
        }
        text = self.tokenizer.decode([i for i in ids if i not in special], skip_special_tokens=False)
        for subject in table.subjects:
            for row in table.slot_rows(subject):
                text = text.replace(self.spliced.slot_token(row), subject.display_name)
        if re.search(r"<\|yollava_slot_\d+\|>", text):
            raise SubjectError("generated a slot token that belongs to no subject")
        return text.strip()


_RECOGNITION_OPENERS = re.compile(
    r"^\s*(is|are|can you see|do you see|does this (photo|picture|image) (show|have|contain)|"
    r"is there|are there|who'?s in)\b",
    re.IGNORECASE,
)


def is_recognition_question(question: str) -> bool:
    """Whether ``question`` asks if someone is in a photo ("Is Bo in this picture?")."""
    if not _RECOGNITION_OPENERS.search(question):
        return False
    return bool(
        re.search(
            r"\b(here|in (this|the) (photo|picture|image|pic|shot)|there|together|this)\b",
            question,
            re.IGNORECASE,
        )
    )
