"""Teaching a subject: training data, the loop over the subject's vectors, model selection.

Only the subject's two tensors are optimised (AdamW); the base model is frozen and never written.
Frozen vision-tower + projector outputs are computed once per training image (and augmented
view) and cached for every epoch. The loss covers answer tokens only. A held-out split of the
positives and negatives picks the best epoch by balanced recognition accuracy and sets the
subject's recognition threshold; with ``averaged_epochs`` the subject instead keeps the mean of
its vectors over the last epochs, and the split only sets the threshold.
"""

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image

from personalization.batching import collate
from personalization.config import TrainConfig
from personalization.engine import Engine
from personalization.errors import NotEnoughPhotos, TrainingCancelled
from personalization.images import augmented_views, load_image, zoomed_out
from personalization.metrics import choose_threshold, recognition_score
from personalization.negatives import BankIndex, image_embeddings
from personalization.prompts import (
    NEGATIVE_ANSWERS,
    POSITIVE_ANSWERS,
    RECOGNITION_QUESTIONS,
    Encoded,
    fill,
    personal_prompt,
    personalize,
    sanitize_user_text,
)
from personalization.splice import IGNORE_INDEX, SplicedModel, SubjectTable
from personalization.subject import Subject, initial_vectors

MIN_PHOTOS = 3


@dataclass(frozen=True)
class TrainingProgress:
    """A progress report: ``phase`` is ``preparing``, ``training`` or ``done``."""

    phase: str
    step: int
    total_steps: int
    epoch: int
    epochs: int
    loss: float | None
    elapsed_s: float
    eta_s: float | None
    message: str = ""


ProgressCallback = Callable[[TrainingProgress], None]
StopCheck = Callable[[], bool]


@dataclass
class Conversation:
    """One training turn: a user prompt, the answer to learn, and the image it shows (if any)."""

    prompt: str
    answer: str
    image: int | None
    role: str


@dataclass
class TrainResult:
    """What training produced: the subject (best vectors, threshold, metrics) and the loss curve."""

    subject: Subject
    metrics: dict[str, Any]
    losses: list[float] = field(default_factory=list)


def answer_loss(
    spliced: SplicedModel,
    encoded: Sequence[Encoded],
    table: SubjectTable,
    sample_subjects: Sequence[Sequence[Subject]],
    image_features: Sequence[torch.Tensor],
    *,
    pad_id: int,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy on answer tokens of a batch whose samples may carry different subjects.

    Logits are computed only where labels are. Each sample can predict only the identifiers of
    its own subjects, so it scores exactly as if it were run alone.

    Returns:
        the mean loss (``reduction="mean"``) or one loss per answer token (``"none"``).
    """
    batch = collate(encoded, pad_id=pad_id).to(spliced.device)
    embeds = spliced.embed(batch.input_ids, table, image_features)
    hidden, _ = spliced.hidden_states(embeds, attention_mask=batch.attention_mask)
    targets = batch.labels[:, 1:]
    selected = targets != IGNORE_INDEX
    sample_of_position = torch.arange(len(encoded), device=targets.device)[:, None].expand_as(targets)[
        selected
    ]
    allowed = torch.stack([table.slot_mask(subjects, generatable_only=True) for subjects in sample_subjects])
    logits = spliced.logits(hidden[:, :-1][selected], table, allowed.to(hidden.device)[sample_of_position])
    return torch.nn.functional.cross_entropy(logits, targets[selected], reduction=reduction)


class Trainer:
    """Teaches subjects on one :class:`Engine`.

    Args:
        engine: the frozen model with its encoder (shared with inference).
        config: the recipe.
    """

    def __init__(self, engine: Engine, config: TrainConfig) -> None:
        self.engine = engine
        self.config = config

    def teach(
        self,
        subject: Subject,
        photos: Sequence[Image.Image],
        *,
        bank: BankIndex | None,
        progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> TrainResult:
        """Train ``subject`` in place from ``photos``; return it with held-out figures.

        With ``config.members`` above 1 the subject is trained that many times, each from its own
        start and seed (which draws its views and held-out split); the first run's vectors become
        the subject's, the others its :attr:`~personalization.subject.Subject.members`.

        Raises:
            NotEnoughPhotos: fewer than ``MIN_PHOTOS`` photos.
            TrainingCancelled: ``should_stop()`` returned True between two steps.
        """
        if len(photos) < MIN_PHOTOS:
            raise NotEnoughPhotos(f"need at least {MIN_PHOTOS} photos to teach a subject, got {len(photos)}")
        config = self.config
        started = time.monotonic()
        report = progress or (lambda _progress: None)
        count = config.members
        results: list[TrainResult] = []
        per_member = [0]
        # The frozen model's replies about each photo are the same for every member: ask once.
        replies: dict[tuple[int, str], str] = {}
        for member in range(count):
            if member == 0:
                trained = subject
            else:
                inputs, outputs = initial_vectors(
                    self.engine.loaded, kind=subject.kind, k=subject.k, seed=config.seed + member
                )
                trained = replace(
                    subject, input_vectors=inputs, output_vectors=outputs, members=[], metrics={}
                )
            trained.members = []

            def relay(update: TrainingProgress, member: int = member) -> None:
                # One bar over every member: steps and epochs count on from the previous members
                # (a member's steps are known once it trains; all members have as many).
                if update.total_steps:
                    per_member[0] = update.total_steps
                total = per_member[0] * count
                step = update.step + member * per_member[0]
                elapsed = time.monotonic() - started
                message = update.message
                if count > 1 and message:
                    message = f"{message} (model {member + 1} of {count})"
                report(
                    replace(
                        update,
                        step=step,
                        total_steps=total,
                        epoch=update.epoch + member * update.epochs if update.epoch else 0,
                        epochs=update.epochs * count,
                        elapsed_s=elapsed,
                        eta_s=elapsed / step * (total - step)
                        if step and update.phase == "training"
                        else None,
                        message=message,
                    )
                )

            results.append(
                self._teach_one(
                    trained,
                    photos,
                    bank,
                    replace(config, seed=config.seed + member),
                    relay,
                    should_stop,
                    replies,
                )
            )
        first = results[0]
        if count > 1:
            subject.members = [(r.subject.input_vectors, r.subject.output_vectors) for r in results[1:]]
            if config.calibrate_threshold:
                subject.threshold = sum(r.subject.threshold for r in results) / count
            subject.metrics = {
                **first.metrics,
                "threshold": round(subject.threshold, 4),
                "members": count,
                "member_heldout_weighted_accuracy": [r.metrics["heldout_weighted_accuracy"] for r in results],
                "steps": sum(r.metrics["steps"] for r in results),
                "seconds": round(time.monotonic() - started, 1),
            }
        losses = [loss for r in results for loss in r.losses]
        total_steps = len(losses)
        report(
            TrainingProgress(
                "done",
                total_steps,
                total_steps,
                config.epochs * count,
                config.epochs * count,
                losses[-1] if losses else None,
                time.monotonic() - started,
                0.0,
            )
        )
        return TrainResult(subject, subject.metrics, losses)

    def _teach_one(
        self,
        subject: Subject,
        photos: Sequence[Image.Image],
        bank: BankIndex | None,
        config: TrainConfig,
        report: ProgressCallback,
        should_stop: StopCheck | None,
        replies: dict[tuple[int, str], str],
    ) -> TrainResult:
        """One training run of ``subject`` (its vectors only) with ``config``; ``replies`` caches
        the frozen model's answers by (photo index, question) across runs."""
        rng = random.Random(config.seed)
        torch.manual_seed(config.seed)
        started = time.monotonic()
        stop = should_stop or (lambda: False)

        def preparing(message: str) -> None:
            report(
                TrainingProgress(
                    "preparing",
                    0,
                    0,
                    0,
                    config.epochs,
                    None,
                    time.monotonic() - started,
                    None,
                    message,
                )
            )
            if stop():
                raise TrainingCancelled("training was cancelled")

        order = list(range(len(photos)))
        rng.shuffle(order)
        n_holdout = max(1, round(len(photos) * config.holdout_fraction)) if config.holdout_fraction > 0 else 0
        holdout_photos = [photos[i] for i in order[:n_holdout]]
        train_indices = order[n_holdout:]
        train_photos = [photos[i] for i in train_indices]

        preparing("reading photos")
        features: list[torch.Tensor] = []
        positive_views: list[int] = []
        for number, photo in enumerate(train_photos):
            views = augmented_views(photo, count=config.views_per_photo, seed=config.seed * 1000 + number)
            positive_views.extend(range(len(features), len(features) + len(views)))
            features.extend(self.engine.image_features(views))
        originals = [positive_views[i * config.views_per_photo] for i in range(len(train_photos))]

        preparing("finding hard negatives")
        negative_images: list[int] = []
        negative_view_sets: list[list[int]] = []
        heldout_negative_features: list[torch.Tensor] = []
        hard_count = 0
        if bank is not None and len(bank) > 0:
            queries = image_embeddings([features[i] for i in originals])
            hard = bank.hard_negatives(queries, per_query=config.hard_negatives_per_photo)
            easy = bank.easy_negatives(config.easy_negatives, exclude=set(hard), rng=rng)
            heldout_hard, train_hard = _split(hard, config.holdout_fraction, rng)
            heldout_easy, train_easy = _split(easy, config.holdout_fraction, rng)
            hard_count = len(train_hard)
            train_negatives = train_hard + train_easy
            loaded = [load_image(bank.paths[i]) for i in train_negatives]
            negative_images = list(range(len(features), len(features) + len(loaded)))
            features.extend(self.engine.image_features(loaded))
            # Further views of each negative, framed as the positives' views are, so that framing
            # (a crop, a mirror) says nothing about the answer; one is used per epoch, in turn.
            extras: list[Image.Image] = []
            for number, image in enumerate(loaded):
                views = augmented_views(
                    image, count=config.negative_views, seed=config.seed * 1000 + 700 + number
                )[1:]
                first = len(features) + len(extras)
                negative_view_sets.append([negative_images[number], *range(first, first + len(views))])
                extras.extend(views)
            features.extend(self.engine.image_features(extras) if extras else [])
            heldout = [load_image(bank.paths[i]) for i in heldout_hard + heldout_easy]
            heldout_negative_features = self.engine.image_features(heldout) if heldout else []
            if config.zoomed_out_views:
                # Backgrounds from outside the hard negatives, which may show look-alikes.
                others = sorted(set(range(len(bank))) - set(hard)) or list(range(len(bank)))
                zoomed = [
                    zoomed_out(photo, load_image(bank.paths[rng.choice(others)]), rng=rng)
                    for photo in train_photos
                    for _ in range(config.zoomed_out_views)
                ]
                positive_views.extend(range(len(features), len(features) + len(zoomed)))
                features.extend(self.engine.image_features(zoomed))
        # Model selection sees every augmented view of the held-out photos (more evidence for the
        # threshold); the figures reported to the owner count the original photos only.
        heldout_positive_features: list[torch.Tensor] = []
        heldout_originals: list[torch.Tensor] = []
        for number, photo in enumerate(holdout_photos):
            views = augmented_views(
                photo, count=config.views_per_photo, seed=config.seed * 1000 + 500 + number
            )
            view_features = self.engine.image_features(views)
            heldout_originals.append(view_features[0])
            heldout_positive_features.extend(view_features)

        readings: dict[str, list[str]] = {}
        if config.text_qa or config.reading_init:
            preparing("asking the base model about the photos")
            readings = self._readings(subject, [(i, photos[i]) for i in train_indices], replies)
        text_conversations = self._text_qa(subject, readings) if config.text_qa else []
        if config.reading_init:
            self._initialise_from_readings(subject, readings)
        if subject.facts:
            text_conversations.append(
                Conversation(
                    f"{personal_prompt(subject)} Tell me about {subject.identifier}.",
                    personalize(subject.facts, [subject]),
                    None,
                    "facts",
                )
            )

        table = SubjectTable.of([subject])
        for tensor in subject.parameters():
            tensor.requires_grad_(True)
        optimizer = torch.optim.AdamW(subject.parameters(), lr=config.learning_rate, weight_decay=0.0)
        per_epoch = config.positive_examples + len(negative_images) + len(text_conversations)
        steps_per_epoch = math.ceil(per_epoch / config.batch_size)
        total_steps = steps_per_epoch * config.epochs
        losses: list[float] = []
        best: tuple[tuple[float, float], int, torch.Tensor, torch.Tensor, float] | None = None
        averaged: list[tuple[torch.Tensor, torch.Tensor]] = []
        step = 0
        if config.reading_init:
            # The start is already a description: keep it unless an epoch validates better.
            quality, threshold = self._validate(subject, heldout_positive_features, heldout_negative_features)
            inputs, outputs = subject.input_vectors.detach().clone(), subject.output_vectors.detach().clone()
            best = (quality, 0, inputs, outputs, threshold)
        try:
            for epoch in range(1, config.epochs + 1):
                this_epoch = [views[(epoch - 1) % len(views)] for views in negative_view_sets]
                conversations = self._recognition_conversations(subject, positive_views, this_epoch, rng)
                conversations += text_conversations
                rng.shuffle(conversations)
                for start in range(0, len(conversations), config.batch_size):
                    if stop():
                        raise TrainingCancelled("training was cancelled")
                    chunk = conversations[start : start + config.batch_size]
                    encoded = [
                        self.engine.encoder.encode(
                            self.engine.encoder.user_turn(c.prompt, with_image=c.image is not None),
                            c.answer,
                            table,
                        )
                        for c in chunk
                    ]
                    loss = answer_loss(
                        self.engine.spliced,
                        encoded,
                        table,
                        [[subject]] * len(chunk),
                        [features[c.image] for c in chunk if c.image is not None],
                        pad_id=self.engine.pad_id,
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate_at(config, step, total_steps)
                    optimizer.step()
                    step += 1
                    losses.append(loss.item())
                    elapsed = time.monotonic() - started
                    eta = elapsed / step * (total_steps - step)
                    report(
                        TrainingProgress(
                            "training",
                            step,
                            total_steps,
                            epoch,
                            config.epochs,
                            losses[-1],
                            elapsed,
                            eta,
                        )
                    )
                if epoch > config.epochs - config.averaged_epochs:
                    averaged.append(
                        (subject.input_vectors.detach().clone(), subject.output_vectors.detach().clone())
                    )
                    continue
                quality, threshold = self._validate(
                    subject, heldout_positive_features, heldout_negative_features
                )
                if best is None or quality >= best[0]:
                    best = (
                        quality,
                        epoch,
                        subject.input_vectors.detach().clone(),
                        subject.output_vectors.detach().clone(),
                        threshold,
                    )
        finally:
            for tensor in subject.parameters():
                tensor.requires_grad_(False)

        if averaged:
            # The mean of the last epochs' vectors replaces the chosen epoch; the held-out split
            # only sets the threshold.
            subject.input_vectors = torch.stack([inputs for inputs, _ in averaged]).mean(dim=0)
            subject.output_vectors = torch.stack([outputs for _, outputs in averaged]).mean(dim=0)
            quality, threshold = self._validate(subject, heldout_positive_features, heldout_negative_features)
            best = (quality, config.epochs, subject.input_vectors, subject.output_vectors, threshold)
        assert best is not None
        _, best_epoch, best_inputs, best_outputs, threshold = best
        subject.input_vectors = best_inputs
        subject.output_vectors = best_outputs
        subject.threshold = threshold
        positives = self.engine.yes_probabilities([(f, subject) for f in heldout_originals])
        negatives = self.engine.yes_probabilities([(f, subject) for f in heldout_negative_features])
        score = recognition_score(positives, negatives, threshold)
        subject.metrics = {
            "heldout_positives": len(positives),
            "heldout_positives_recognised": sum(p >= threshold for p in positives),
            "heldout_negatives": len(negatives),
            "heldout_negatives_rejected": sum(p < threshold for p in negatives),
            "heldout_weighted_accuracy": round(score.weighted, 4),
            "threshold": round(threshold, 4),
            "best_epoch": best_epoch,
            "averaged_epochs": config.averaged_epochs,
            "epochs": config.epochs,
            "steps": step,
            "train_photos": len(train_photos),
            "positive_views": len(positive_views),
            "hard_negatives": hard_count,
            "negatives": len(negative_images),
            "text_qa_examples": len(text_conversations),
            "negative_bank": bank is not None and len(bank) > 0,
            "final_loss": round(losses[-1], 4) if losses else None,
            "seconds": round(time.monotonic() - started, 1),
        }
        return TrainResult(subject, subject.metrics, losses)

    def _recognition_conversations(
        self,
        subject: Subject,
        positive_views: list[int],
        negative_images: list[int],
        rng: random.Random,
    ) -> list[Conversation]:
        prompt = personal_prompt(subject)
        positive_answers: tuple[str, ...] = POSITIVE_ANSWERS
        negative_answers: tuple[str, ...] = NEGATIVE_ANSWERS
        if self.config.answer_style == "word":
            positive_answers, negative_answers = ("Yes",), ("No",)
        conversations = []
        for number in range(self.config.positive_examples):
            question = self.engine.yes_no(fill(rng.choice(RECOGNITION_QUESTIONS), subject))
            answer = fill(rng.choice(positive_answers), subject)
            view = positive_views[number % len(positive_views)]
            conversations.append(Conversation(f"{prompt} {question}", answer, view, "positive"))
        for image in negative_images:
            question = self.engine.yes_no(fill(rng.choice(RECOGNITION_QUESTIONS), subject))
            answer = fill(rng.choice(negative_answers), subject)
            conversations.append(Conversation(f"{prompt} {question}", answer, image, "negative"))
        return conversations

    def _readings(
        self,
        subject: Subject,
        photos: Sequence[tuple[int, Image.Image]],
        replies: dict[tuple[int, str], str],
    ) -> dict[str, list[str]]:
        """The frozen model's reply to each attribute question (``{kind}`` filled in) about each
        ``(index, photo)``, in photo order (empty where it said nothing); ``replies`` keeps the
        answers by (index, question), so a photo asked about once is not asked again."""
        questions = [template.format(kind=subject.kind) for template in self.config.attribute_questions]
        readings: dict[str, list[str]] = {question: [] for question in questions}
        for index, photo in photos:
            for question in questions:
                if (index, question) not in replies:
                    reply = self.engine.answer(
                        question, image=photo, max_new_tokens=self.config.qa_max_new_tokens
                    )
                    replies[index, question] = reply.strip()
                readings[question].append(replies[index, question])
        return readings

    def _text_qa(self, subject: Subject, readings: dict[str, list[str]]) -> list[Conversation]:
        """The paper's text-only QA: what the frozen model said about each photo, asked of the
        subject by name and trained without the photo."""
        prompt = personal_prompt(subject)
        photos = max((len(replies) for replies in readings.values()), default=0)
        return [
            Conversation(
                f"{prompt} {personalize(question, [subject])}",
                personalize(sanitize_user_text(replies[photo]), [subject]),
                None,
                "text",
            )
            for photo in range(photos)
            for question, replies in readings.items()
            if replies[photo]
        ]

    def _initialise_from_readings(self, subject: Subject, readings: dict[str, list[str]]) -> None:
        """Start the latent tokens at the embeddings of what the frozen model most often said
        about the photos (one reply per question, in order, cut to k tokens); the tokens it does
        not fill keep their category-word start."""
        tokenizer = self.engine.loaded.processor.tokenizer
        ids: list[int] = []
        for replies in readings.values():
            said = Counter(sanitize_user_text(r).strip().rstrip(".").lower() for r in replies if r)
            if said:
                ids += tokenizer.encode(" " + said.most_common(1)[0][0], add_special_tokens=False)
        ids = ids[: len(subject.latent_names)]
        if not ids:
            return
        embedding: Any = self.engine.loaded.model.get_input_embeddings()
        vectors = embedding.weight.detach().float()[ids].to(subject.input_vectors.device)
        subject.input_vectors[1 : 1 + len(ids)] = vectors.to(subject.input_vectors.dtype)

    def _validate(
        self, subject: Subject, positives: Sequence[torch.Tensor], negatives: Sequence[torch.Tensor]
    ) -> tuple[tuple[float, float], float]:
        """((balanced accuracy, margin), threshold) on the held-out split."""
        positive = self.engine.yes_probabilities([(f, subject) for f in positives])
        negative = self.engine.yes_probabilities([(f, subject) for f in negatives])
        if self.config.calibrate_threshold:
            threshold, accuracy = choose_threshold(positive, negative)
        else:
            threshold = self.config.recognition_threshold
            accuracy = (
                recognition_score(positive, negative, threshold).weighted if positive and negative else 0.0
            )
        mean_positive = sum(positive) / len(positive) if positive else 0.0
        mean_negative = sum(negative) / len(negative) if negative else 0.0
        return (accuracy, mean_positive - mean_negative), threshold


def learning_rate_at(config: TrainConfig, step: int, total_steps: int) -> float:
    """The step size of optimiser step ``step`` (0-based) of ``total_steps`` under ``config``."""
    if config.learning_rate_schedule == "cosine" and total_steps > 0:
        return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return config.learning_rate


def _split(indices: list[int], fraction: float, rng: random.Random) -> tuple[list[int], list[int]]:
    """(held-out, training) parts of ``indices``; at least one held out when there are ≥ 2."""
    if fraction <= 0 or len(indices) < 2:
        return [], list(indices)
    shuffled = list(indices)
    rng.shuffle(shuffled)
    count = max(1, round(len(shuffled) * fraction))
    return shuffled[:count], shuffled[count:]


def describe_heldout(metrics: dict[str, Any]) -> str:
    """One sentence of held-out figures for the owner, from :attr:`Subject.metrics`."""
    if not metrics.get("heldout_positives"):
        return "trained; no photos were held out, so recognition was not checked"
    text = (
        f"recognised {metrics['heldout_positives_recognised']}/{metrics['heldout_positives']} "
        f"of your held-out photos"
    )
    if metrics.get("heldout_negatives"):
        text += (
            f", rejected {metrics['heldout_negatives_rejected']}/{metrics['heldout_negatives']} "
            "held-out look-alikes and other photos"
        )
    else:
        text += "; no negative bank, so rejection of look-alikes was not checked"
    return text + f" (trained in {metrics.get('seconds', '?')} s)"
