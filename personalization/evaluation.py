"""Evaluation with the paper's protocol, on the toy world or the real Yo'LLaVA layout.

Dataset layout (the paper's): ``train/<subject>/*`` (photos a subject is taught from),
``test/<subject>/*`` (held-out photos), optionally ``negatives/`` (the negative bank),
``subjects.json`` (kind and, if known, a description per subject), ``text_qa.json`` and
``visual_qa.json`` (multiple choice), and ``test_lookalikes/<subject>/*`` (toy world only).
Where the toy world's ``test_scenes.json`` and ``lookalikes.json`` are present, the positives are
also reported for test photos showing the subject alone and among others, and look-alike
rejection for look-alikes that differ in a named attribute and in fine ones only.

Metrics, as in the paper:

* recognition: every test photo × every subject, "Is <sks> in this photo?"; positive accuracy
  (own photos said yes), negative accuracy (other subjects' photos said no), weighted = mean;
* text-only QA: multiple choice about the subject, no image; visual QA: multiple choice on a
  test photo. The answer is the option letter the model ranks highest after the question (the
  paper's form); ``*_by_answer`` also reports the option whose text is the likeliest answer to
  the bare question, which does not rely on the model following the lettered format.

Methods: ``vanilla`` (the name alone), ``description`` (the subject's named attributes written
out), and ``learned`` tokens with any k, optionally without hard negatives or text-only QA.
"""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from personalization.config import TrainConfig
from personalization.engine import Engine
from personalization.errors import ImageError, PersonalizationError
from personalization.images import list_images, load_image
from personalization.metrics import recognition_score
from personalization.negatives import BankIndex, index_bank
from personalization.prompts import EVAL_RECOGNITION_QUESTION, personal_prompt, sanitize_user_text
from personalization.splice import SubjectTable
from personalization.subject import Subject, new_subject
from personalization.trainer import Trainer, answer_loss

OPTION_LETTERS = "ABCD"


@dataclass(frozen=True)
class Method:
    """One way of telling the model about a subject."""

    name: str
    strategy: str  # "vanilla" | "description" | "learned"
    k: int = 16
    hard_negatives: bool = True
    text_qa: bool = True
    reading_init: bool = False


def method_by_name(name: str, *, k: int = 16) -> Method:
    """``vanilla``, ``description``, ``learned`` (k from the argument), ``learned-k8``,
    ``no-hard-negatives``, ``no-text-qa``, ``reading-init`` (learned tokens that start at the
    model's own reading of the photos)."""
    if name in ("vanilla", "description"):
        return Method(name, name)
    if name == "learned":
        return Method(f"learned-k{k}", "learned", k=k)
    if name.startswith("learned-k") and name[len("learned-k") :].isdigit():
        return Method(name, "learned", k=int(name[len("learned-k") :]))
    if name == "no-hard-negatives":
        return Method(f"{name}-k{k}", "learned", k=k, hard_negatives=False)
    if name == "no-text-qa":
        return Method(f"{name}-k{k}", "learned", k=k, text_qa=False)
    if name == "reading-init":
        return Method(f"{name}-k{k}", "learned", k=k, reading_init=True)
    raise PersonalizationError(f"unknown method {name!r}")


@dataclass
class EvalSubject:
    key: str
    kind: str
    description: str | None
    train: list[Path]
    test: list[Path]
    lookalikes: list[Path] = field(default_factory=list)


@dataclass
class Dataset:
    root: Path
    subjects: list[EvalSubject]
    negatives: Path | None
    text_qa: dict[str, list[dict[str, Any]]]
    visual_qa: dict[str, dict[str, dict[str, Any]]]
    test_scenes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lookalike_info: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)


def load_dataset(root: Path, *, negatives: Path | None = None) -> Dataset:
    """Read a dataset in the paper's layout; QA files and look-alikes are optional."""
    train_root, test_root = root / "train", root / "test"
    if not train_root.is_dir() or not test_root.is_dir():
        raise PersonalizationError(f"{root}: expected train/<subject>/ and test/<subject>/ folders")
    info = _json(root / "subjects.json", {})
    subjects = []
    for folder in sorted(p for p in train_root.iterdir() if p.is_dir()):
        meta = info.get(folder.name, {})
        lookalike_dir = root / "test_lookalikes" / folder.name
        subjects.append(
            EvalSubject(
                key=folder.name,
                kind=str(meta.get("kind", "object")),
                description=meta.get("description"),
                train=list_images(folder),
                test=list_images(test_root / folder.name) if (test_root / folder.name).is_dir() else [],
                lookalikes=list_images(lookalike_dir) if lookalike_dir.is_dir() else [],
            )
        )
    if not subjects:
        raise PersonalizationError(f"{train_root}: no subject folders")
    bank = negatives or (root / "negatives" if (root / "negatives").is_dir() else None)
    return Dataset(
        root,
        subjects,
        bank,
        _json(root / "text_qa.json", {}),
        _json(root / "visual_qa.json", {}),
        _json(root / "test_scenes.json", {}),
        _json(root / "lookalikes.json", {}),
    )


def _json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


@dataclass
class Probe:
    """How a method names one subject in prompts."""

    preamble: str
    name: str
    subjects: list[Subject]
    threshold: float = 0.5
    train_seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)


def display_name(key: str) -> str:
    return key.replace("_", " ").strip().title() or key


class Evaluator:
    """Runs methods over a dataset on one engine."""

    def __init__(
        self,
        engine: Engine,
        dataset: Dataset,
        train_config: TrainConfig,
        *,
        attribute_questions: Callable[[str], Sequence[str]] | None = None,
        log: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.engine = engine
        self.dataset = dataset
        self.train_config = train_config
        self.attribute_questions = attribute_questions
        self.log = log
        self._bank: BankIndex | None = None
        self._features: dict[Path, torch.Tensor] = {}

    def bank(self) -> BankIndex | None:
        if self._bank is None and self.dataset.negatives is not None:
            self._bank = index_bank(self.dataset.negatives, self.engine)
        return self._bank

    def features(self, paths: Sequence[Path]) -> list[torch.Tensor]:
        missing = [p for p in paths if p not in self._features]
        for start in range(0, len(missing), 32):
            chunk = missing[start : start + 32]
            for path, feature in zip(
                chunk, self.engine.image_features([load_image(p) for p in chunk]), strict=True
            ):
                self._features[path] = feature
        return [self._features[p] for p in paths]

    def probe(self, subject: EvalSubject, method: Method) -> Probe:
        name = display_name(subject.key)
        if method.strategy == "vanilla":
            return Probe("", name, [])
        if method.strategy == "description":
            if not subject.description:
                raise PersonalizationError(f"{subject.key}: no description in subjects.json")
            return Probe(f"{name} is {sanitize_user_text(subject.description)}.", name, [])
        config = replace(
            self.train_config,
            text_qa=self.train_config.text_qa and method.text_qa,
            reading_init=self.train_config.reading_init or method.reading_init,
            hard_negatives_per_photo=self.train_config.hard_negatives_per_photo
            if method.hard_negatives
            else 0,
        )
        if self.attribute_questions is not None:
            config = replace(config, attribute_questions=tuple(self.attribute_questions(subject.kind)))
        learned = new_subject(
            self.engine.loaded, display_name=name, kind=subject.kind, k=method.k, seed=config.seed
        )
        photos = [load_image(p) for p in subject.train]
        started = time.monotonic()
        Trainer(self.engine, config).teach(learned, photos, bank=self.bank())
        seconds = time.monotonic() - started
        return Probe(
            personal_prompt(learned),
            learned.identifier,
            [learned],
            learned.threshold,
            seconds,
            learned.metrics,
        )

    def _prompt(self, probe: Probe, question: str, *, with_image: bool) -> str:
        return self.engine.encoder.user_turn(f"{probe.preamble} {question}".strip(), with_image=with_image)

    def recognition(self, probes: dict[str, Probe]) -> dict[str, dict[str, list[list[float]]]]:
        """P(yes) for every (test photo, subject), per member of the subject's tokens.

        Returns ``{subject: {"own": [...], "others": [...], "lookalikes": [...]}}`` where each
        group holds one list of scores per member (one list for a method without members).
        """
        scores: dict[str, dict[str, list[list[float]]]] = {}
        for subject in self.dataset.subjects:
            groups = {
                "own": subject.test,
                "others": [p for other in self.dataset.subjects if other is not subject for p in other.test],
                "lookalikes": subject.lookalikes,
            }
            scores[subject.key] = {
                group: self.member_yes_scores(probes[subject.key], paths) for group, paths in groups.items()
            }
        return scores

    def yes_scores(self, probe: Probe, paths: Sequence[Path]) -> list[float]:
        """P(yes) of the evaluation's recognition question about ``probe``'s subject, per image
        (the mean over the subject's members, as :meth:`Engine.yes_probabilities` scores it)."""
        return _member_mean(self.member_yes_scores(probe, paths))

    def member_yes_scores(self, probe: Probe, paths: Sequence[Path]) -> list[list[float]]:
        """:meth:`yes_scores` for each member of the probe's subjects on its own."""
        question = self.engine.yes_no(EVAL_RECOGNITION_QUESTION.format(name=probe.name))
        prompt = self._prompt(probe, question, with_image=True)
        views = [subject.member_views() for subject in probe.subjects]
        by_member: list[list[float]] = []
        for member in range(max((len(v) for v in views), default=1)):
            table = SubjectTable.of([v[min(member, len(v) - 1)] for v in views])
            values: list[float] = []
            for start in range(0, len(paths), 16):
                chunk = paths[start : start + 16]
                features: list[torch.Tensor | None] = list(self.features(chunk))
                logits = self.engine.last_logits([prompt] * len(chunk), features, table)
                values.extend(self.engine.yes_share(logits).tolist())
            by_member.append(values)
        return by_member

    def choice_accuracy(
        self, probe: Probe, items: Sequence[tuple[dict[str, Any], Path | None]]
    ) -> tuple[float | None, float | None]:
        """Share of multiple-choice questions answered right, scored two ways: by the option letter
        the model ranks highest after the question and its lettered options (the paper's form),
        and by the option whose text is the likeliest answer to the bare question (mean
        log-probability per answer token), which does not depend on the model following the
        lettered format."""
        if not items:
            return None, None
        table = SubjectTable.of(probe.subjects)
        tokenizer = self.engine.encoder
        letter_ids = {letter: tokenizer.answer_start_token(letter) for letter in OPTION_LETTERS}
        by_letter = by_answer = 0
        for item, image in items:
            options = item["options"]
            question = item["question"].replace(f"<{item['_key']}>", probe.name)
            lines = "\n".join(f"{letter}. {text}" for letter, text in options.items())
            text = f"{question}\n{lines}\nAnswer with the option's letter."
            features: list[torch.Tensor | None] = [self.features([image])[0] if image is not None else None]
            logits = self.engine.last_logits(
                [self._prompt(probe, text, with_image=image is not None)], features, table
            )[0]
            best = max(options, key=lambda letter: float(logits[letter_ids[letter]]))
            by_letter += best == item["correct_answer"]
            bare = self._prompt(probe, question, with_image=image is not None)
            image_features = [f for f in features if f is not None]
            with torch.no_grad():
                likelihood = {
                    letter: -float(
                        answer_loss(
                            self.engine.spliced,
                            [tokenizer.encode(bare, option, table)],
                            table,
                            [probe.subjects],
                            image_features,
                            pad_id=self.engine.pad_id,
                        )
                    )
                    for letter, option in options.items()
                }
            by_answer += max(options, key=likelihood.__getitem__) == item["correct_answer"]
        return by_letter / len(items), by_answer / len(items)

    def run(self, method: Method) -> dict[str, Any]:
        """Train (if needed) and score every subject with ``method``; per subject and overall."""
        probes = {}
        for subject in self.dataset.subjects:
            self.log(f"[{method.name}] preparing {subject.key}")
            probes[subject.key] = self.probe(subject, method)
        member_scores = self.recognition(probes)
        scores = {
            key: {group: _member_mean(values) for group, values in groups.items()}
            for key, groups in member_scores.items()
        }
        per_subject: dict[str, Any] = {}
        totals: dict[str, list[float]] = {
            key: []
            for key in (
                "pos",
                "neg",
                "pos05",
                "neg05",
                "look",
                "text",
                "visual",
                "text_answer",
                "visual_answer",
            )
        }
        for subject in self.dataset.subjects:
            probe = probes[subject.key]
            own, others, look = (scores[subject.key][g] for g in ("own", "others", "lookalikes"))
            calibrated = recognition_score(own, others, probe.threshold)
            plain = recognition_score(own, others, 0.5)
            text_items = [
                ({**q, "_key": subject.key}, None) for q in self.dataset.text_qa.get(subject.key, [])
            ]
            visual_items = [
                ({**q, "_key": subject.key}, self.dataset.root / path)
                for path, q in self.dataset.visual_qa.get(subject.key, {}).items()
            ]
            text, text_by_answer = self.choice_accuracy(probe, text_items)
            visual, visual_by_answer = self.choice_accuracy(probe, visual_items)
            lookalike_rejection = sum(p < probe.threshold for p in look) / len(look) if look else None
            per_subject[subject.key] = {
                "positive": calibrated.positive,
                "negative": calibrated.negative,
                "weighted": calibrated.weighted,
                "weighted_at_0.5": plain.weighted,
                "lookalike_rejection": lookalike_rejection,
                "text_qa": text,
                "visual_qa": visual,
                "text_qa_by_answer": text_by_answer,
                "visual_qa_by_answer": visual_by_answer,
                "threshold": probe.threshold,
                "train_seconds": round(probe.train_seconds, 1),
                # Every P(yes) share, so other thresholds can be read off the report afterwards
                # (benchmarks/threshold_sweep.py) without scoring again.
                "scores": {
                    group: [round(score, 4) for score in scores[subject.key][group]]
                    for group in ("own", "others", "lookalikes")
                },
            }
            if len(member_scores[subject.key]["own"]) > 1:
                # Each member's own scores, so one member alone can be scored from this report.
                per_subject[subject.key]["member_scores"] = [
                    {
                        group: [round(score, 4) for score in member_scores[subject.key][group][member]]
                        for group in ("own", "others", "lookalikes")
                    }
                    for member in range(len(member_scores[subject.key]["own"]))
                ]
            totals["pos"].append(calibrated.positive)
            totals["neg"].append(calibrated.negative)
            totals["pos05"].append(plain.positive)
            totals["neg05"].append(plain.negative)
            for key, value in (
                ("look", lookalike_rejection),
                ("text", text),
                ("visual", visual),
                ("text_answer", text_by_answer),
                ("visual_answer", visual_by_answer),
            ):
                if value is not None:
                    totals[key].append(value)

        def mean(values: list[float]) -> float | None:
            return round(sum(values) / len(values), 4) if values else None

        breakdown = {name: mean(values) for name, values in self.breakdown(probes, scores).items()}
        # Each member alone, at the subject's threshold: what one training run would have scored.
        members = min(len(groups["own"]) for groups in member_scores.values()) if member_scores else 1
        by_member = [
            mean(
                [
                    recognition_score(
                        member_scores[key]["own"][member],
                        member_scores[key]["others"][member],
                        probe.threshold,
                    ).weighted
                    for key, probe in probes.items()
                ]
            )
            for member in range(members)
        ]

        positive, negative = mean(totals["pos"]) or 0.0, mean(totals["neg"]) or 0.0
        return {
            "method": method.name,
            "positive": positive,
            "negative": negative,
            "weighted": round(0.5 * positive + 0.5 * negative, 4),
            "weighted_at_0.5": round(
                0.5 * (mean(totals["pos05"]) or 0) + 0.5 * (mean(totals["neg05"]) or 0), 4
            ),
            "lookalike_rejection": mean(totals["look"]),
            "text_qa": mean(totals["text"]),
            "visual_qa": mean(totals["visual"]),
            "text_qa_by_answer": mean(totals["text_answer"]),
            "visual_qa_by_answer": mean(totals["visual_answer"]),
            "train_seconds_per_subject": mean([p.train_seconds for p in probes.values()]),
            "breakdown": breakdown,
            "weighted_by_member": by_member if members > 1 else None,
            "subjects": per_subject,
        }

    def breakdown(
        self, probes: dict[str, Probe], scores: dict[str, dict[str, list[float]]]
    ) -> dict[str, list[float]]:
        """Right (1.0) or wrong (0.0) per photo, pooled over subjects, where the dataset says what
        a photo shows: ``positive_alone`` / ``positive_with_others`` (own test photos accepted,
        by ``test_scenes.json``), ``lookalike_named_rejected`` / ``lookalike_fine_rejected``
        (test look-alikes rejected, by ``fine_only`` in ``lookalikes.json``)."""
        root = self.dataset.root
        groups: dict[str, list[float]] = {
            "positive_alone": [],
            "positive_with_others": [],
            "lookalike_named_rejected": [],
            "lookalike_fine_rejected": [],
        }
        for subject in self.dataset.subjects:
            threshold = probes[subject.key].threshold
            scenes = self.dataset.test_scenes.get(subject.key, {})
            for path, score in zip(subject.test, scores[subject.key]["own"], strict=True):
                scene = scenes.get(path.relative_to(root).as_posix())
                if scene is not None:
                    group = "positive_alone" if scene.get("others", 0) == 0 else "positive_with_others"
                    groups[group].append(float(score >= threshold))
            info = {
                entry["path"]: entry
                for entry in self.dataset.lookalike_info.get(subject.key, {}).get("test", [])
                if "fine_only" in entry
            }
            for path, score in zip(subject.lookalikes, scores[subject.key]["lookalikes"], strict=True):
                entry = info.get(path.relative_to(root).as_posix())
                if entry is not None:
                    group = "lookalike_fine_rejected" if entry["fine_only"] else "lookalike_named_rejected"
                    groups[group].append(float(score < threshold))
        return groups


def _member_mean(by_member: list[list[float]]) -> list[float]:
    return [sum(values) / len(values) for values in zip(*by_member, strict=True)]


def check_dataset_images(dataset: Dataset) -> None:
    """Fail early, with the file's name, if a photo of the dataset cannot be read."""
    for subject in dataset.subjects:
        for path in [*subject.train, *subject.test]:
            try:
                load_image(path)
            except ImageError as error:
                raise PersonalizationError(str(error)) from error
