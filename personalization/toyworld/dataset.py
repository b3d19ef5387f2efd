"""Toy-world personalization datasets in the Yo'LLaVA dataset's layout.

:func:`write_dataset` renders, for a seed, ``n_subjects`` subjects and writes::

    OUT/
      dataset.json            {"format": 1, "seed": S, "image_size": 96, "subjects": [...],
                               "counts": {...}}
      subjects.json           {"kami": {"kind": "dog", "colour": "red", "pattern": "striped",
                                        "accessory": "hat", "description": "a red striped dog
                                        with a hat", "fine": {"shade": "dark", "marking": "back",
                                        "ears": "floppy"}}, ...}
      train/<subject>/0.png … 4.png        the photos a subject is taught from
      test/<subject>/0.png … N-1.png       held-out photos of the subject (N ≥ 10)
      test_lookalikes/<subject>/0.png …    held-out photos of the subject's look-alikes only
      negatives/00000.png …                the negative bank (≥ 500 images): look-alikes of
                                           every subject and random scenes; never a subject
      lookalikes.json         which files show look-alikes, and how they differ
      test_scenes.json        how many other entities each test photo shows
      text_qa.json            text-only multiple-choice questions per subject
      visual_qa.json          visual multiple-choice questions on test photos

All paths inside the json files are relative to ``OUT`` and use ``/``.

``lookalikes.json``::

    {"kami": {"test": [{"path": "test_lookalikes/kami/0.png", "differs": ["marking"]}, ...],
              "negatives": [{"path": "negatives/00012.png", "differs": ["colour"]}, ...]}}

``differs`` lists the attributes in which the look-alike differs from the subject: fine ones
(``shade``, ``marking``, ``variant``) or exactly one named one (``colour``, ``pattern``,
``accessory``); ``fine_only`` says which of the two. Test look-alikes and bank look-alikes are
different entities, so rejecting a test look-alike is never a matter of having seen that exact
one as a negative.

``test_scenes.json`` (the subject alone, or with one or two other entities)::

    {"kami": {"test/kami/0.png": {"others": 0}, "test/kami/1.png": {"others": 2}, ...}}

``text_qa.json`` (no image; ``<kami>`` stands for the subject, as in Yo'LLaVA's files)::

    {"kami": [{"question": "What colour is <kami>?", "options": {"A": "Red", "B": "Blue"},
               "correct_answer": "A", "attribute": "colour"}, ...]}

``visual_qa.json`` (one question per test photo)::

    {"kami": {"test/kami/0.png": {"question": "What colour is <kami>?",
                                  "options": {"A": "Red", "B": "Teal"},
                                  "correct_answer": "A", "attribute": "colour"}, ...}}

On a photo where the subject appears with other things the question is chosen so that the other
things' answer is the wrong option (the model must find the subject in the photo).

The paper's recognition protocol uses ``test/``: every test photo × every subject. The
look-alike photos let an evaluation report look-alike rejection separately.
"""

import argparse
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from personalization.toyworld.corpus import capitalise, make_name
from personalization.toyworld.world import (
    ACCESSORIES,
    COLOURS,
    IMAGE_SIZE,
    KINDS,
    PATTERNS,
    EntitySpec,
    Lookalike,
    Subject,
    accessory_phrase,
    article,
    make_lookalikes,
    make_subject,
    random_entity,
    render_scene,
)

DATASET_FORMAT = 1
TRAIN_DIR = "train"
TEST_DIR = "test"
TEST_LOOKALIKES_DIR = "test_lookalikes"
NEGATIVES_DIR = "negatives"

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(images_written, images_total)``."""

Options = dict[str, str]


@dataclass(frozen=True)
class DatasetSizes:
    """How many images of each sort :func:`write_dataset` writes."""

    train_photos: int = 5
    test_photos: int = 12
    test_lookalikes: int = 6
    bank_size: int = 600
    bank_lookalikes_per_subject: int = 12

    def __post_init__(self) -> None:
        for name in ("train_photos", "test_photos", "bank_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("test_lookalikes", "bank_lookalikes_per_subject"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must not be negative")


def make_subjects(rng: random.Random, n: int) -> list[Subject]:
    """``n`` subjects with distinct names; two subjects never share kind and colour."""
    subjects: list[Subject] = []
    names: set[str] = set()
    while len(subjects) < n:
        name = make_name(rng).lower()
        kind = KINDS[len(subjects) % len(KINDS)]
        subject = make_subject(rng, name=name, kind=kind)
        clash = any((s.spec.kind, s.spec.colour) == (kind, subject.spec.colour) for s in subjects)
        if name in names or clash:
            continue
        names.add(name)
        subjects.append(subject)
    return subjects


def _companions(
    rng: random.Random, subject: EntitySpec, forbidden: set[EntitySpec], count: int
) -> list[EntitySpec]:
    """``count`` random entities of kinds other than ``subject``'s, none equal to a subject."""
    kinds = rng.sample([k for k in KINDS if k != subject.kind], count)
    found = []
    for kind in kinds:
        entity = random_entity(rng, kind=kind)
        while entity in forbidden:
            entity = random_entity(rng, kind=kind)
        found.append(entity)
    return found


def _photo(
    rng: random.Random,
    entity: EntitySpec,
    forbidden: set[EntitySpec],
    *,
    alone_probability: float,
) -> tuple[Image.Image, list[EntitySpec]]:
    """A photo of ``entity``, alone or with one or two others; returns it and its companions."""
    count = 0 if rng.random() < alone_probability else rng.choice((1, 1, 2))
    companions = _companions(rng, entity, forbidden, count)
    scene = [entity, *companions]
    order = list(range(len(scene)))
    rng.shuffle(order)
    image = render_scene([scene[i] for i in order], rng)
    return image, companions


def _options(rng: random.Random, correct: str, wrong: str) -> tuple[Options, str]:
    pair = [correct, wrong]
    rng.shuffle(pair)
    return {"A": pair[0], "B": pair[1]}, "AB"[pair.index(correct)]


def _other(rng: random.Random, values: list[str], current: str) -> str:
    return rng.choice([v for v in values if v != current])


def _question(attribute: str, question: str, options: Options, letter: str) -> dict[str, object]:
    return {
        "question": question,
        "options": options,
        "correct_answer": letter,
        "attribute": attribute,
    }


def text_questions(subject: Subject, rng: random.Random) -> list[dict[str, object]]:
    """Two-option questions about ``subject``'s named attributes, answerable without an image."""
    spec = subject.spec
    tag = f"<{subject.name}>"
    other_kind = _other(rng, list(KINDS), spec.kind)
    other_colour = _other(rng, list(COLOURS), spec.colour)
    items: list[tuple[str, str, str, str]] = [
        (
            "colour",
            f"What colour is {tag}?",
            capitalise(spec.colour),
            capitalise(_other(rng, list(COLOURS), spec.colour)),
        ),
        (
            "pattern",
            f"What pattern does {tag} have?",
            capitalise(spec.pattern),
            capitalise(_other(rng, list(PATTERNS), spec.pattern)),
        ),
        (
            "accessory",
            f"What is {tag} wearing?",
            capitalise(accessory_phrase(spec.accessory)),
            capitalise(accessory_phrase(_other(rng, list(ACCESSORIES), spec.accessory))),
        ),
        (
            "kind",
            f"What kind of thing is {tag}?",
            capitalise(f"{article(spec.kind)} {spec.kind}"),
            capitalise(f"{article(other_kind)} {other_kind}"),
        ),
        ("kind", f"Is {tag} {article(spec.kind)} {spec.kind}?", "Yes", "No"),
        ("colour", f"Is {tag} {other_colour}?", "No", "Yes"),
    ]
    questions = []
    for attribute, question, correct, wrong in items:
        options, letter = _options(rng, correct, wrong)
        questions.append(_question(attribute, question, options, letter))
    return questions


def visual_question(subject: Subject, companions: list[EntitySpec], rng: random.Random) -> dict[str, object]:
    """One two-option question about ``subject`` in a photo with ``companions``.

    With companions, the wrong option is a companion's value of the asked attribute, so answering
    needs finding the subject in the photo; alone, the wrong option is a random other value.
    """
    spec = subject.spec
    tag = f"<{subject.name}>"
    if companions:
        asks = [
            (name, companion)
            for companion in companions
            for name in ("colour", "pattern", "accessory")
            if getattr(companion, name) != getattr(spec, name)
        ]
        if asks:
            attribute, companion = rng.choice(asks)
            wrong = getattr(companion, attribute)
        else:
            attribute, wrong = "kind", companions[0].kind
    else:
        attribute = rng.choice(("colour", "pattern", "accessory"))
        values = {"colour": list(COLOURS), "pattern": list(PATTERNS), "accessory": list(ACCESSORIES)}
        wrong = _other(rng, values[attribute], getattr(spec, attribute))
    if attribute == "kind":
        question = f"Which one is {tag} in this photo?"
        correct_text = capitalise(f"the {spec.kind}")
        wrong_text = capitalise(f"the {wrong}")
    elif attribute == "accessory":
        question = f"What is {tag} wearing in this photo?"
        correct_text = capitalise(accessory_phrase(spec.accessory))
        wrong_text = capitalise(accessory_phrase(wrong))
    else:
        verb = "What colour is" if attribute == "colour" else "What pattern does"
        question = f"{verb} {tag}{' have' if attribute == 'pattern' else ''} in this photo?"
        correct_text = capitalise(getattr(spec, attribute))
        wrong_text = capitalise(wrong)
    options, letter = _options(rng, correct_text, wrong_text)
    return _question(attribute, question, options, letter)


def _save(image: Image.Image, root: Path, relative: str) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return relative


def _lookalike_entry(relative: str, lookalike: Lookalike) -> dict[str, object]:
    return {"path": relative, "differs": list(lookalike.differs), "fine_only": lookalike.fine_only}


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_dataset(
    out: Path,
    *,
    seed: int,
    n_subjects: int,
    sizes: DatasetSizes | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, object]:
    """Render a dataset of ``n_subjects`` subjects into ``out`` (see the module docstring).

    Deterministic for ``seed`` and ``sizes``. ``out`` must not already hold a dataset. Returns the
    manifest also written to ``dataset.json``.

    Example:
        >>> write_dataset(Path("data"), seed=7, n_subjects=10)  # doctest: +SKIP
    """
    sizes = sizes or DatasetSizes()
    if n_subjects < 1:
        raise ValueError(f"n_subjects={n_subjects} must be at least 1")
    bank_lookalikes = n_subjects * sizes.bank_lookalikes_per_subject
    if bank_lookalikes > sizes.bank_size:
        raise ValueError(
            f"bank_size={sizes.bank_size} cannot hold {bank_lookalikes} look-alikes "
            f"({sizes.bank_lookalikes_per_subject} for each of {n_subjects} subjects)"
        )
    if (out / "dataset.json").exists():
        raise FileExistsError(f"{out} already holds a dataset")
    out.mkdir(parents=True, exist_ok=True)

    rng = random.Random(seed)
    subjects = make_subjects(rng, n_subjects)
    forbidden = {s.spec for s in subjects}
    per_subject = sizes.train_photos + sizes.test_photos + sizes.test_lookalikes
    total = n_subjects * per_subject + sizes.bank_size
    written = 0

    def tick() -> None:
        nonlocal written
        written += 1
        if progress is not None:
            progress(written, total)

    lookalikes: dict[str, dict[str, list[dict[str, object]]]] = {}
    bank_lookalike_specs: dict[str, list[Lookalike]] = {}
    text_qa: dict[str, list[dict[str, object]]] = {}
    visual_qa: dict[str, dict[str, dict[str, object]]] = {}
    test_scenes: dict[str, dict[str, dict[str, int]]] = {}
    for subject in subjects:
        name = subject.name
        for index in range(sizes.train_photos):
            image, _ = _photo(rng, subject.spec, forbidden, alone_probability=0.7)
            _save(image, out, f"{TRAIN_DIR}/{name}/{index}.png")
            tick()
        visual_qa[name] = {}
        test_scenes[name] = {}
        for index in range(sizes.test_photos):
            image, companions = _photo(rng, subject.spec, forbidden, alone_probability=0.5)
            relative = _save(image, out, f"{TEST_DIR}/{name}/{index}.png")
            test_scenes[name][relative] = {"others": len(companions)}
            visual_qa[name][relative] = visual_question(subject, companions, rng)
            tick()
        candidates = make_lookalikes(
            subject,
            rng,
            sizes.test_lookalikes + sizes.bank_lookalikes_per_subject,
        )
        candidates = [c for c in candidates if c.spec not in forbidden]
        test_specs = candidates[: sizes.test_lookalikes]
        bank_lookalike_specs[name] = candidates[sizes.test_lookalikes :]
        entries = []
        for index, lookalike in enumerate(test_specs):
            image, _ = _photo(rng, lookalike.spec, forbidden, alone_probability=0.6)
            relative = _save(image, out, f"{TEST_LOOKALIKES_DIR}/{name}/{index}.png")
            entries.append(_lookalike_entry(relative, lookalike))
            tick()
        lookalikes[name] = {"test": entries, "negatives": []}
        text_qa[name] = text_questions(subject, rng)

    bank_plan: list[tuple[str, Lookalike] | None] = [
        (name, lookalike) for name, specs in bank_lookalike_specs.items() for lookalike in specs
    ]
    bank_plan += [None] * (sizes.bank_size - len(bank_plan))
    rng.shuffle(bank_plan)
    for index, planned in enumerate(bank_plan):
        relative = f"{NEGATIVES_DIR}/{index:05d}.png"
        if planned is None:
            count = rng.choices((1, 2, 3), weights=(0.5, 0.3, 0.2))[0]
            entities = []
            for kind in rng.sample(KINDS, count):
                entity = random_entity(rng, kind=kind)
                while entity in forbidden:
                    entity = random_entity(rng, kind=kind)
                entities.append(entity)
            _save(render_scene(entities, rng), out, relative)
        else:
            name, lookalike = planned
            image, _ = _photo(rng, lookalike.spec, forbidden, alone_probability=0.6)
            _save(image, out, relative)
            lookalikes[name]["negatives"].append(_lookalike_entry(relative, lookalike))
        tick()

    subjects_json = {
        s.name: {**s.spec.named(), "description": s.spec.describe(), "fine": s.spec.fine()} for s in subjects
    }
    manifest: dict[str, object] = {
        "format": DATASET_FORMAT,
        "seed": seed,
        "image_size": IMAGE_SIZE,
        "subjects": [s.name for s in subjects],
        "counts": {
            "train_per_subject": sizes.train_photos,
            "test_per_subject": sizes.test_photos,
            "test_lookalikes_per_subject": len(test_specs) if subjects else 0,
            "negatives": sizes.bank_size,
        },
    }
    _write_json(out / "subjects.json", subjects_json)
    _write_json(out / "lookalikes.json", lookalikes)
    _write_json(out / "test_scenes.json", test_scenes)
    _write_json(out / "text_qa.json", text_qa)
    _write_json(out / "visual_qa.json", visual_qa)
    _write_json(out / "dataset.json", manifest)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """``yollava toyworld dataset --out DIR [--seed S] [--subjects N] [--bank-size M]``"""
    parser = argparse.ArgumentParser(
        prog="yollava toyworld dataset", description="Write a toy-world dataset in the Yo'LLaVA layout."
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--train-photos", type=int, default=DatasetSizes.train_photos)
    parser.add_argument("--test-photos", type=int, default=DatasetSizes.test_photos)
    parser.add_argument("--bank-size", type=int, default=DatasetSizes.bank_size)
    args = parser.parse_args(argv)
    sizes = DatasetSizes(
        train_photos=args.train_photos, test_photos=args.test_photos, bank_size=args.bank_size
    )
    write_dataset(args.out, seed=args.seed, n_subjects=args.subjects, sizes=sizes)
    print(f"wrote {args.subjects} subjects to {args.out}")
    return 0
