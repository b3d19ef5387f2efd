"""Inference with subjects: recognition scores and answers, on one frozen model.

The engine owns the :class:`SplicedModel` and the :class:`PromptEncoder`. It knows prompts and
tensors, not files, users or Discord. Every call is ``torch.no_grad``; training lives in
:mod:`personalization.trainer` and reuses :meth:`Engine.image_features` and the batch helpers.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from personalization.batching import collate
from personalization.errors import SubjectError
from personalization.modeling import LoadedModel
from personalization.prompts import (
    EVAL_RECOGNITION_QUESTION,
    Encoded,
    PromptEncoder,
    fill,
    is_recognition_question,
    mentions,
    personal_prompt,
    personalize,
)
from personalization.splice import SplicedModel, SubjectTable
from personalization.subject import Subject

DEFAULT_MAX_NEW_TOKENS = 64
RECOGNITION_BATCH_SIZE = 16


@dataclass(frozen=True)
class Recognition:
    """Whether a subject is in an image: ``probability`` = P(yes) / (P(yes) + P(no))."""

    subject: str
    probability: float
    threshold: float

    @property
    def present(self) -> bool:
        return self.probability >= self.threshold


class Engine:
    """One frozen LLaVA serving every subject.

    Args:
        loaded: the frozen model and its processor (the tokenizer gains the slot pool).
    """

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.spliced = SplicedModel(loaded)
        self.encoder = PromptEncoder(self.spliced)
        self.yes_token = self.encoder.answer_start_token("Yes")
        self.no_token = self.encoder.answer_start_token("No")
        if self.yes_token == self.no_token:
            raise SubjectError("the tokenizer cannot tell 'Yes' from 'No' by their first token")
        self.pad_id = int(self.encoder.tokenizer.pad_token_id or self.encoder.tokenizer.eos_token_id)

    @property
    def model_id(self) -> str:
        return self.loaded.model_id

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    # -- images --------------------------------------------------------------------------------

    def pixel_values(self, images: Sequence[Image.Image]) -> torch.Tensor:
        processed = self.loaded.processor.image_processor(list(images), return_tensors="pt")
        return processed["pixel_values"]

    def image_features(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> list[torch.Tensor]:
        """Frozen vision tower + projector output per image: ``[N, H]`` in the model's dtype."""
        features: list[torch.Tensor] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            features.extend(self.spliced.image_features(self.pixel_values(chunk)))
        return features

    # -- recognition ---------------------------------------------------------------------------

    def yes_no(self, question: str) -> str:
        """``question`` as this base model expects a question it should answer Yes or No first
        (its :class:`~personalization.modeling.ModelConventions`)."""
        return question + self.loaded.conventions.yes_no_suffix

    def recognition_prompt(self, subject: Subject) -> str:
        return self.encoder.user_turn(
            f"{personal_prompt(subject)} {self.yes_no(fill(EVAL_RECOGNITION_QUESTION, subject))}",
            with_image=True,
        )

    def yes_probabilities(
        self,
        pairs: Sequence[tuple[torch.Tensor, Subject]],
        *,
        batch_size: int = RECOGNITION_BATCH_SIZE,
    ) -> list[float]:
        """P(yes) / (P(yes) + P(no)) for each (image features, subject) pair, batched.

        A subject with further members scores as the mean over its member views; a batch holds
        one view of each subject, so views sharing token names never meet in one prompt table.
        """
        totals = [0.0] * len(pairs)
        counts = [0] * len(pairs)
        views_of = {id(subject): subject.member_views() for _, subject in pairs}
        rounds = max((len(views) for views in views_of.values()), default=0)
        with torch.no_grad():
            for member in range(rounds):
                indices = [i for i, (_, subject) in enumerate(pairs) if member < len(views_of[id(subject)])]
                views = [(pairs[i][0], views_of[id(pairs[i][1])][member]) for i in indices]
                for start in range(0, len(views), batch_size):
                    chunk = views[start : start + batch_size]
                    values = self._yes_probabilities(chunk).tolist()
                    for index, value in zip(indices[start : start + batch_size], values, strict=True):
                        totals[index] += value
                        counts[index] += 1
        return [total / count for total, count in zip(totals, counts, strict=True)]

    def _yes_probabilities(self, pairs: Sequence[tuple[torch.Tensor, Subject]]) -> torch.Tensor:
        table = SubjectTable.of([subject for _, subject in pairs])
        prompts = [self.recognition_prompt(subject) for _, subject in pairs]
        logits = self.last_logits(prompts, [features for features, _ in pairs], table)
        return self.yes_share(logits)

    def yes_share(self, logits: torch.Tensor) -> torch.Tensor:
        """``[B]`` P(yes) / (P(yes) + P(no)) from next-token logits ``[B, V]``."""
        pair = logits[:, [self.yes_token, self.no_token]]
        return torch.softmax(pair, dim=-1)[:, 0].cpu()

    @torch.no_grad()
    def last_logits(
        self, prompts: Sequence[str], image_features: Sequence[torch.Tensor | None], table: SubjectTable
    ) -> torch.Tensor:
        """Base-vocabulary logits ``[B, V]`` of the token after each prompt (from :meth:`user_turn`).

        ``image_features[i]`` is the image of prompt ``i`` (None for a text-only prompt).
        """
        encoded = [self.encoder.encode(prompt, None, table) for prompt in prompts]
        batch = collate(encoded, pad_id=self.pad_id).to(self.device)
        features = [f for f in image_features if f is not None]
        embeds = self.spliced.embed(batch.input_ids, table, features)
        hidden, _ = self.spliced.hidden_states(embeds, attention_mask=batch.attention_mask)
        last = hidden[torch.arange(len(prompts), device=hidden.device), batch.lengths - 1]
        return self.spliced.model.lm_head(last).float()

    def recognize(self, image: Image.Image, subject: Subject) -> Recognition:
        """Is ``subject`` in ``image``? A probability and a decision by the subject's threshold."""
        features = self.image_features([image])[0]
        probability = self.yes_probabilities([(features, subject)])[0]
        return Recognition(subject.display_name, probability, subject.threshold)

    def recognize_all(self, image: Image.Image, subjects: Sequence[Subject]) -> list[Recognition]:
        """Recognition of each of ``subjects`` in one image (vision features computed once)."""
        features = self.image_features([image])[0]
        probabilities = self.yes_probabilities([(features, subject) for subject in subjects])
        return [
            Recognition(subject.display_name, probability, subject.threshold)
            for subject, probability in zip(subjects, probabilities, strict=True)
        ]

    # -- free answers --------------------------------------------------------------------------

    def question_prompt(self, question: str, subjects: Sequence[Subject], *, with_image: bool) -> str:
        """Personal prompts of ``subjects`` followed by the personalized question."""
        preamble = " ".join(personal_prompt(subject) for subject in subjects)
        text = personalize(question, subjects)
        return self.encoder.user_turn(f"{preamble} {text}".strip(), with_image=with_image)

    def answer(
        self,
        question: str,
        *,
        image: Image.Image | None = None,
        subjects: Sequence[Subject] = (),
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ) -> str:
        """Greedy answer to ``question`` about ``subjects`` (and ``image`` if given).

        Subject identifiers the model says are rendered as display names.

        Example:
            >>> engine.answer("What colour is Bo?", subjects=[bo])
            'Bo is brown.'
        """
        table = SubjectTable.of(subjects)
        prompt = self.question_prompt(question, table.subjects, with_image=image is not None)
        encoded = self.encoder.encode(prompt, None, table)
        features = self.image_features([image]) if image is not None else []
        ids = self.generate(encoded, table, features, max_new_tokens=max_new_tokens)
        return self.encoder.decode(ids, table)

    @torch.no_grad()
    def generate(
        self,
        encoded: Encoded,
        table: SubjectTable,
        image_features: Sequence[torch.Tensor],
        *,
        max_new_tokens: int,
    ) -> list[int]:
        """Greedy decoding with the key/value cache; returns the new token ids (eos excluded).

        Only base tokens and subject identifiers can be generated, never latent tokens.
        """
        allowed = table.slot_mask(table.subjects, generatable_only=True)
        input_ids = torch.tensor([encoded.input_ids], device=self.device)
        embeds = self.spliced.embed(input_ids, table, image_features)
        hidden, cache = self.spliced.hidden_states(embeds, use_cache=True)
        eos = int(self.encoder.tokenizer.eos_token_id)
        generated: list[int] = []
        for _ in range(max_new_tokens):
            logits = self.spliced.logits(hidden[:, -1], table, allowed)
            token = self.spliced.from_vocab_column(int(logits.argmax(dim=-1)))
            if token == eos:
                break
            generated.append(token)
            step = torch.tensor([[token]], device=self.device)
            hidden, cache = self.spliced.hidden_states(
                self.spliced.embed(step, table), cache=cache, use_cache=True
            )
        return generated

    def respond(self, question: str, *, image: Image.Image | None, subjects: Sequence[Subject]) -> str:
        """Answer like a person would: calibrated yes/no for "is X here?", free text otherwise.

        With an image and a recognition question, each subject named (or all given, if none is
        named) is scored and the answer starts with "Yes" or "No".
        """
        if image is not None and subjects and is_recognition_question(question):
            named = [subject for subject in subjects if mentions(question, subject)] or list(subjects)
            results = self.recognize_all(image, named)
            return recognition_sentence(results)
        return self.answer(question, image=image, subjects=subjects)


def recognition_sentence(results: Sequence[Recognition]) -> str:
    """ "Yes, Bo is in the photo." / "No, …" for one or several recognitions (all must be present)."""
    present = [r.subject for r in results if r.present]
    absent = [r.subject for r in results if not r.present]
    details = "; ".join(_score(r) for r in results)
    if not absent:
        return f"Yes, {_join(present)} {'is' if len(present) == 1 else 'are'} in the photo. ({details})"
    if not present:
        return f"No, {_join(absent)} {'is' if len(absent) == 1 else 'are'} not in the photo. ({details})"
    verb = "is" if len(present) == 1 else "are"
    return f"No, only {_join(present)} {verb} in the photo, not {_join(absent)}. ({details})"


def _score(result: Recognition) -> str:
    """``Bo 51%, needs 53%``: the score beside the subject's own threshold, so a "No" at 51% reads
    as the calibrated decision it is (one decimal where whole percents would look equal)."""
    digits = 0
    while digits < 2 and round(result.probability * 100, digits) == round(result.threshold * 100, digits):
        digits += 1
    return f"{result.subject} {result.probability:.{digits}%}, needs {result.threshold:.{digits}%}"


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
