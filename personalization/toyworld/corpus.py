"""The generic pretraining corpus: LLaVA-1.5 conversations about toy-world scenes.

A :class:`Conversation` is an optional image and a list of (question, answer) turns. The corpus
never mentions a specific subject: questions are about kinds and attributes ("What colour is the
dog?", "Is there a red striped dog with a hat?"), captions, counts, and text-only questions about
kinds. Some turns bind a made-up name to a description given in the prompt ("Pim is a red dog. Is
Pim in this photo?"), which teaches the model to read who someone is from its prompt, the
mechanism personal tokens later use.

Answers are short and start with a capitalised word; yes/no answers are exactly ``Yes`` or ``No``
(each one token after a space with the toy tokenizer), because recognition reads P(Yes) against
P(No) at the first answer token.

:func:`attribute_questions` gives the generic questions the frozen model answers about a photo of
one entity; the personalization engine asks them to build text-only QA data.

Conversations are rendered to token ids by :func:`encode_conversation` in the LLaVA-1.5 format::

    USER: <image>\\n{q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>

which is what ``processor.apply_chat_template`` produces for the first prompt.
"""

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from personalization.toyworld.painting import paint_scenes
from personalization.toyworld.world import (
    ACCESSORIES,
    ANIMAL_KINDS,
    COLOURS,
    KINDS,
    MARKINGS,
    PATTERNS,
    SHADES,
    SHAPE_VARIANTS,
    EntitySpec,
    ScenePlan,
    accessory_phrase,
    article,
    plan_scene,
    random_entity,
)

NUMBER_WORDS = ("Zero", "One", "Two", "Three")
MARKING_PHRASES = {
    "head": "on its head",
    "back": "on its back",
    "rear": "at its rear",
    "belly": "on its belly",
}
_NAME_SYLLABLES = (
    "bo",
    "ka",
    "mi",
    "lu",
    "po",
    "ti",
    "ra",
    "ze",
    "no",
    "fi",
    "sa",
    "du",
    "ve",
    "ko",
)

Turn = tuple[str, str]


@dataclass(eq=False)
class Conversation:
    """One training example: an optional image and its question/answer turns, in order."""

    image: Image.Image | None
    turns: list[Turn]
    entities: list[EntitySpec] | None = None
    """What the image shows (None for text-only examples)."""
    owners: np.ndarray | None = None
    """Which entity each pixel of the image shows (see ``render_scene_with_owners``)."""
    plan: ScenePlan | None = None
    """A scene planned but not painted yet (``image`` and ``owners`` None until
    :func:`painted`); the streams hand out painted conversations only."""


TEXT_ONLY_PROBABILITY = 0.08
"""Share of corpus examples without an image."""
PAINT_CHUNK = 32
"""Examples a stream plans before painting their scenes together (on several cores inside
:func:`~personalization.toyworld.painting.parallel_painting`)."""


def painted(conversations: Sequence[Conversation]) -> list[Conversation]:
    """``conversations`` with every planned scene painted (in parallel where painting is)."""
    scenes = iter(paint_scenes([c.plan for c in conversations if c.plan is not None]))
    out = []
    for conversation in conversations:
        if conversation.plan is None:
            out.append(conversation)
        else:
            image, owners = next(scenes)
            out.append(replace(conversation, image=image, owners=owners, plan=None))
    return out


def attribute_questions(kind: str) -> list[str]:
    """Generic questions the pretrained model answers about a photo showing one ``kind``.

    Example:
        >>> attribute_questions("dog")[0]
        'What colour is the dog?'
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    return [
        f"What colour is the {kind}?",
        f"What pattern does the {kind} have?",
        f"What is the {kind} wearing?",
        "What kind of thing is in the photo?",
    ]


def part_phrase(entity: EntitySpec) -> str:
    """``floppy ears`` for a dog, ``a curled tail`` for a cat."""
    plural = entity.part.endswith("s")
    return f"{entity.variant_word} {entity.part}" if plural else f"a {entity.variant_word} {entity.part}"


def shape_question(entity: EntitySpec) -> str:
    """``What shape are the dog's ears?``"""
    verb = "are" if entity.part.endswith("s") else "is"
    return f"What shape {verb} the {entity.kind}'s {entity.part}?"


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def caption(entities: list[EntitySpec]) -> str:
    """``A red striped dog with a hat and a blue mug.``"""
    phrases = [entity.describe() for entity in entities]
    joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return capitalise(joined) + "."


def make_name(rng: random.Random) -> str:
    """A made-up two-syllable name such as ``Kami``."""
    return capitalise(rng.choice(_NAME_SYLLABLES) + rng.choice(_NAME_SYLLABLES))


def _perturb(entity: EntitySpec, rng: random.Random, *, fine: bool) -> EntitySpec:
    """``entity`` with one attribute changed (a hard negative for an existence question)."""
    attributes = ["colour", "pattern", "accessory", "kind"]
    if fine:
        attributes += ["shade", "marking", "variant"]
    attribute = rng.choice(attributes)
    if attribute == "kind":
        other = rng.choice([k for k in KINDS if k != entity.kind])
        return replace(entity, kind=other, variant=min(entity.variant, len(SHAPE_VARIANTS[other][1]) - 1))
    choices: dict[str, tuple[object, ...]] = {
        "colour": tuple(COLOURS),
        "pattern": PATTERNS,
        "accessory": ACCESSORIES,
        "shade": tuple(SHADES),
        "marking": MARKINGS,
        "variant": tuple(range(len(SHAPE_VARIANTS[entity.kind][1]))),
    }
    current = getattr(entity, attribute)
    change: dict[str, Any] = {attribute: rng.choice([c for c in choices[attribute] if c != current])}
    return replace(entity, **change)


def _existence_turn(entities: list[EntitySpec], rng: random.Random) -> Turn:
    """A balanced yes/no question about a described entity, negatives mostly one attribute off."""
    fine = rng.random() < 0.5
    if rng.random() < 0.5:
        target = rng.choice(entities)
        phrase = _describe_exactly(target, rng, fine=fine)
        answer = "Yes"
    else:
        for _ in range(20):
            target = _perturb(rng.choice(entities), rng, fine=fine)
            phrase = _describe_exactly(target, rng, fine=fine, must=_changed_attribute(target, entities))
            if not any(_described_by(phrase, entity) for entity in entities):
                break
        answer = "Yes" if any(_described_by(phrase, entity) for entity in entities) else "No"
    template = rng.choice(
        (
            "Is there {d}?",
            "Is there {d} in this photo?",
            "Can you see {d}?",
            "Does this photo show {d}?",
            "Is {d} in the picture?",
        )
    )
    return template.format(d=phrase.text), answer


@dataclass(frozen=True)
class _Phrase:
    """A description, and the attribute values it states (unstated ones match anything)."""

    text: str
    kind: str
    stated: dict[str, object]


def _changed_attribute(target: EntitySpec, entities: list[EntitySpec]) -> set[str]:
    """Attributes in which ``target`` differs from the closest entity in the scene."""
    best: set[str] | None = None
    for entity in entities:
        diff = {
            name
            for name in ("kind", "colour", "pattern", "accessory", "shade", "marking", "variant")
            if getattr(entity, name) != getattr(target, name)
        }
        if best is None or len(diff) < len(best):
            best = diff
    return best or set()


def _describe_exactly(
    entity: EntitySpec, rng: random.Random, *, fine: bool, must: set[str] | None = None
) -> _Phrase:
    """A description of ``entity`` stating a random subset of attributes plus those in ``must``."""
    must = must or set()
    stated: dict[str, object] = {}

    def pick(name: str, probability: float) -> bool:
        if name in must or rng.random() < probability:
            stated[name] = getattr(entity, name)
            return True
        return False

    words: list[str] = []
    if fine and pick("shade", 0.3):
        words.append(entity.shade)
    if pick("colour", 0.7):
        words.append(entity.colour)
    if pick("pattern", 0.5):
        words.append(entity.pattern)
    words.append(entity.kind)
    extras: list[str] = []
    if pick("accessory", 0.5):
        extras.append("no accessory" if entity.accessory == "none" else accessory_phrase(entity.accessory))
    if (fine or "variant" in must) and pick("variant", 0.4):
        extras.append(part_phrase(entity))
    if (fine or "marking" in must) and pick("marking", 0.4):
        extras.append(f"a white mark {MARKING_PHRASES[entity.marking]}")
    if "shade" in must and "shade" not in stated:
        stated["shade"] = entity.shade
        words.insert(0, entity.shade)
    text = " ".join(words)
    if extras:
        text += " with " + " and ".join(extras)
    return _Phrase(text=f"{article(text)} {text}", kind=entity.kind, stated=stated)


def _described_by(phrase: _Phrase, entity: EntitySpec) -> bool:
    return phrase.kind == entity.kind and all(getattr(entity, k) == v for k, v in phrase.stated.items())


def _attribute_turns(entity: EntitySpec, rng: random.Random) -> list[Turn]:
    kind = entity.kind
    turns: list[Turn] = [
        (
            rng.choice((f"What colour is the {kind}?", f"What is the colour of the {kind}?")),
            capitalise(entity.colour),
        ),
        (
            rng.choice(
                (
                    f"What pattern does the {kind} have?",
                    f"Is the {kind} plain, striped, spotted or checkered?",
                )
            ),
            capitalise(entity.pattern),
        ),
        (
            rng.choice((f"What is the {kind} wearing?", f"What accessory does the {kind} have?")),
            capitalise(accessory_phrase(entity.accessory)),
        ),
        (f"How light or dark is the {kind}'s colour?", capitalise(entity.shade)),
        (f"Where is the white mark on the {kind}?", capitalise(MARKING_PHRASES[entity.marking])),
        (shape_question(entity), capitalise(entity.variant_word)),
    ]
    return turns


def _choice_turn(question: str, answer: str, distractors: list[str], rng: random.Random) -> Turn:
    """A multiple-choice version: options A–D, the answer is the correct letter."""
    options = [answer, *rng.sample(distractors, min(len(distractors), rng.choice((1, 1, 2, 3))))]
    rng.shuffle(options)
    letters = "ABCD"
    lines = "\n".join(f"{letters[i]}. {option}" for i, option in enumerate(options))
    text = f"{question}\n{lines}\nAnswer with the option's letter."
    return text, letters[options.index(answer)]


def _distractors(entity: EntitySpec, question_index: int) -> list[str]:
    values: list[str]
    if question_index == 0:
        values = [capitalise(c) for c in COLOURS]
    elif question_index == 1:
        values = [capitalise(p) for p in PATTERNS]
    elif question_index == 2:
        values = [capitalise(accessory_phrase(a)) for a in ACCESSORIES]
    elif question_index == 3:
        values = [capitalise(s) for s in SHADES]
    elif question_index == 4:
        values = [capitalise(MARKING_PHRASES[m]) for m in MARKINGS]
    else:
        values = [capitalise(v) for v in SHAPE_VARIANTS[entity.kind][1]]
    return values


def _named_turns(entities: list[EntitySpec], rng: random.Random) -> list[Turn]:
    """Bind a made-up name to a description, then ask about it (with or without the image)."""
    name = make_name(rng)
    present = rng.random() < 0.5
    target = rng.choice(entities)
    described = target if present else _perturb(target, rng, fine=rng.random() < 0.5)
    phrase = _describe_exactly(
        described, rng, fine=rng.random() < 0.5, must=_changed_attribute(described, entities)
    )
    present = any(_described_by(phrase, entity) for entity in entities)
    question = rng.choice(
        (
            "Is {n} in this photo?",
            "Can you see {n} in this photo?",
            "Is {n} in the picture?",
            "Does this photo show {n}?",
        )
    ).format(n=name)
    return [(f"{name} is {phrase.text}. {question}", "Yes" if present else "No")]


COMPARISON_FORMS = ("colour", "named")
"""The forms a comparison lesson draws from when none is asked for."""
QUESTION_FORMS = (*COMPARISON_FORMS, "partial")
"""Every form :func:`comparison_turn` can ask, ``partial`` included (asked for by name only)."""
NAMED_ATTRIBUTES = ("colour", "pattern", "accessory")
DIRECT_MARK = " Answer yes or no."
"""Ends a question to be answered ``Yes``/``No`` at once where other questions are answered by
checks first (``mark_direct``), so the model is told which answer to give."""
ANSWER_FORMS = ("direct", "reading-first", "checked")


def _wearing(accessory: str) -> str:
    """What follows "with": ``a hat``, ``glasses``, ``no accessory``."""
    return "no accessory" if accessory == "none" else accessory_phrase(accessory)


def _look(entity: EntitySpec) -> str:
    return f"{entity.colour} and {entity.pattern}, with {_wearing(entity.accessory)}"


def _value_word(entity: EntitySpec, attribute: str) -> str:
    value = str(getattr(entity, attribute))
    return "no accessory" if attribute == "accessory" and value == "none" else value


def comparison_turn(
    entities: list[EntitySpec],
    rng: random.Random,
    *,
    form: str | None = None,
    answers: str = "direct",
    mark_direct: bool = False,
) -> Turn:
    """A yes/no question that only a comparison of named attributes with the image answers.

    ``colour``: ``Is there a <colour> <kind>?``; ``named``: a made-up name bound to a colour,
    pattern, kind and accessory, then ``Is <name> in this photo?``, as the text-description
    method asks; ``partial``: the same with a random subset of the three attributes, maybe none
    (``Pim is a striped dog. Is Pim in this photo?``, ``Pim is a cat. …``), so a description can
    be learned one attribute at a time. Half are true; the others are one named attribute off a
    present entity (a look-alike) or name an absent kind. ``form`` None picks ``colour`` or
    ``named`` at random. ``entities`` must be of distinct kinds. ``answers``:

    - ``direct``: ``Yes`` / ``No``;
    - ``reading-first``: what the image shows of that kind, then the decision:
      ``The dog is blue and striped, with a hat. No.`` / ``There is no cat. No.``;
    - ``checked``: each named attribute read and checked against the question's, then the
      decision: ``The dog: blue not red, striped yes, hat yes. No.``.

    ``mark_direct`` ends a question answered directly with :data:`DIRECT_MARK`.
    """
    form = form or rng.choice(COMPARISON_FORMS)
    if form not in QUESTION_FORMS:
        raise ValueError(f"form={form!r} is not one of {QUESTION_FORMS}")
    if answers not in ANSWER_FORMS:
        raise ValueError(f"answers={answers!r} is not one of {ANSWER_FORMS}")
    named: tuple[str, ...] = ("colour",) if form == "colour" else NAMED_ATTRIBUTES
    if form == "partial":
        chosen = set(rng.sample(NAMED_ATTRIBUTES, rng.randint(0, len(NAMED_ATTRIBUTES))))
        named = tuple(a for a in NAMED_ATTRIBUTES if a in chosen)
    kinds = [entity.kind for entity in entities]
    if rng.random() < 0.5:
        target = rng.choice(entities)
    else:
        if named and rng.random() < 0.6:
            target = rng.choice(entities)
        else:
            target = random_entity(rng, kind=rng.choice([k for k in KINDS if k not in kinds]))
        if named:
            off = named[0] if len(named) == 1 else rng.choice(named)  # colour form: no draw, as before
            values: tuple[str, ...] = {
                "colour": tuple(COLOURS),
                "pattern": PATTERNS,
                "accessory": ACCESSORIES,
            }[off]
            change: dict[str, Any] = {off: rng.choice([v for v in values if v != getattr(target, off)])}
            target = replace(target, **change)
    shown = [entity for entity in entities if entity.kind == target.kind]
    if form == "colour":
        question = f"Is there {article(target.colour)} {target.colour} {target.kind}?"
        present = any(entity.colour == target.colour for entity in shown)
        reading = f"The {target.kind} is {shown[0].colour}." if shown else ""
    else:
        name = make_name(rng)
        words = [str(getattr(target, a)) for a in ("colour", "pattern") if a in named]
        text = " ".join((*words, target.kind))
        if "accessory" in named:
            text += f" with {_wearing(target.accessory)}"
        question = f"{name} is {article(text)} {text}. Is {name} in this photo?"
        present = any(all(getattr(e, a) == getattr(target, a) for a in named) for e in shown)
        reading = f"The {target.kind} is {_look(shown[0])}." if shown else ""
    decision = "Yes" if present else "No"
    if answers == "direct":
        return question + (DIRECT_MARK if mark_direct else ""), decision
    if not shown:
        return question, f"There is no {target.kind}. {decision}."
    if answers == "checked":
        pieces = []
        for attribute in named:
            seen, asked = _value_word(shown[0], attribute), _value_word(target, attribute)
            pieces.append(f"{seen} yes" if seen == asked else f"{seen} not {asked}")
        reading = f"The {target.kind}: {', '.join(pieces)}."
    return question, f"{reading} {decision}."


def _text_only_turns(rng: random.Random) -> list[Turn]:
    """Questions about kinds and made-up named entities, answered without an image."""
    kind = rng.choice(KINDS)
    other = rng.choice([k for k in KINDS if k != kind])
    entity = random_entity(rng, kind=kind)
    name = make_name(rng)
    pool: list[Turn] = [
        (f"Is {article(kind)} {kind} an animal?", "Yes" if kind in ANIMAL_KINDS else "No"),
        (f"Is {article(kind)} {kind} an object?", "No" if kind in ANIMAL_KINDS else "Yes"),
        ("Can a fish swim?", "Yes"),
        ("Can a mug fly?", "No"),
        ("Can a bird fly?", "Yes"),
        ("Does a car have wheels?", "Yes"),
        ("Does a dog have wheels?", "No"),
        ("What do you drink from?", "A mug"),
        ("What animal barks?", "A dog"),
        ("What animal meows?", "A cat"),
        ("What lives in water?", "A fish"),
        ("What do people drive?", "A car"),
        (f"{name} is {entity.describe()}. What colour is {name}?", capitalise(entity.colour)),
        (
            f"{name} is {entity.describe()}. What pattern does {name} have?",
            capitalise(entity.pattern),
        ),
        (
            f"{name} is {entity.describe()}. What is {name} wearing?",
            capitalise(accessory_phrase(entity.accessory)),
        ),
        (
            f"{name} is {entity.describe()}. What kind of thing is {name}?",
            capitalise(f"{article(kind)} {kind}"),
        ),
        (f"{name} is {entity.describe()}. Is {name} {article(kind)} {kind}?", "Yes"),
        (f"{name} is {entity.describe()}. Is {name} {article(other)} {other}?", "No"),
    ]
    turns = rng.sample(pool, 3)
    if rng.random() < 0.4:
        turns.append(
            _choice_turn(
                f"{name} is {entity.describe()}. What colour is {name}?",
                capitalise(entity.colour),
                [capitalise(c) for c in COLOURS if c != entity.colour],
                rng,
            )
        )
    return turns


def image_turns(entities: list[EntitySpec], rng: random.Random, *, max_turns: int = 8) -> list[Turn]:
    """Up to ``max_turns`` shuffled questions about a scene holding ``entities`` (distinct kinds)."""
    turns: list[Turn] = []
    if rng.random() < 0.3:
        turns.append(
            (
                rng.choice(("Describe the image.", "What is in this photo?", "Write a short caption.")),
                caption(entities),
            )
        )
    for entity in entities:
        for index, (question, answer) in enumerate(_attribute_turns(entity, rng)):
            if rng.random() < 0.15:
                question, answer = _choice_turn(
                    question, answer, [d for d in _distractors(entity, index) if d != answer], rng
                )
            turns.append((question, answer))
    if len(entities) == 1:
        turns.append(
            (
                rng.choice(("What kind of thing is in the photo?", "What is this?")),
                capitalise(f"{article(entities[0].kind)} {entities[0].kind}"),
            )
        )
    animals = sum(entity.is_animal for entity in entities)
    turns.append(
        (
            rng.choice(("How many things are in the picture?", "How many things can you see?")),
            NUMBER_WORDS[len(entities)],
        )
    )
    turns.append(("How many animals are there?", NUMBER_WORDS[animals]))
    for _ in range(3):
        turns.append(_existence_turn(entities, rng))
    turns.extend(_named_turns(entities, rng))
    rng.shuffle(turns)
    return turns[:max_turns]


def random_scene_entities(rng: random.Random) -> list[EntitySpec]:
    """One to three entities of distinct kinds (one is most common, as in personal photos)."""
    count = rng.choices((1, 2, 3), weights=(0.45, 0.35, 0.2))[0]
    return [random_entity(rng, kind=kind) for kind in rng.sample(KINDS, count)]


@dataclass(frozen=True)
class Scene:
    """A scene for an example: what it shows and its plan, painted already when a pool keeps it
    for re-asking (so a re-asked scene costs nothing to draw again)."""

    entities: list[EntitySpec]
    plan: ScenePlan
    painted: tuple[Image.Image, np.ndarray] | None = None

    def conversation(self, turns: list[Turn]) -> Conversation:
        """An example of ``turns`` about this scene (its painting left to :func:`painted` when
        the scene is not painted yet)."""
        if self.painted is None:
            return Conversation(image=None, turns=turns, entities=self.entities, plan=self.plan)
        image, owners = self.painted
        return Conversation(image=image, turns=turns, entities=self.entities, owners=owners)


class ScenePool:
    """Scenes for a stream of examples, most of them re-asked from recent ones.

    Rendering a scene costs about a fifth of a pretraining language step, and a scene supports
    many different questions. With ``fresh_share`` below 1, once the pool holds ``size`` scenes,
    each example renders a new scene (replacing a random one of the pool) with probability
    ``fresh_share`` and otherwise asks new questions about a pooled scene. At ``fresh_share=1``
    every scene is new and the random stream is exactly that of rendering in line, so a stream
    does not change unless reuse is asked for. Scenes a pool keeps are painted at once; the
    others are left to be painted with their stream's chunk (:func:`painted`).

    Example:
        >>> pool = ScenePool(0.5, size=4)
        >>> scene = pool.scene(random.Random(0), random_scene_entities)
        >>> scene.painted[0].size
        (96, 96)
    """

    def __init__(self, fresh_share: float = 1.0, *, size: int = 1000) -> None:
        if not 0 < fresh_share <= 1:
            raise ValueError(f"fresh_share={fresh_share} must lie in (0, 1]")
        if size < 1:
            raise ValueError(f"size={size} must be at least 1")
        self.fresh_share = fresh_share
        self.size = size
        self.scenes: list[Scene] = []
        self.rendered = 0

    def scene(self, rng: random.Random, draw: Callable[[random.Random], list[EntitySpec]]) -> Scene:
        """A scene for the next example, planned: new (entities from ``draw``) or from the pool."""
        full = len(self.scenes) >= self.size
        if self.fresh_share < 1 and full and rng.random() >= self.fresh_share:
            return self.scenes[rng.randrange(self.size)]
        entities = draw(rng)
        plan = plan_scene(entities, rng)
        self.rendered += 1
        if self.fresh_share == 1:
            return Scene(entities, plan)  # nothing kept: no reuse asked for
        scene = Scene(entities, plan, paint_scenes([plan])[0])
        if full:
            self.scenes[rng.randrange(self.size)] = scene
        else:
            self.scenes.append(scene)
        return scene


def make_conversation(
    rng: random.Random,
    *,
    text_only_probability: float = TEXT_ONLY_PROBABILITY,
    max_turns: int = 8,
    pool: ScenePool | None = None,
) -> Conversation:
    """One random corpus example: a rendered scene with questions, or a text-only exchange;
    ``pool`` decides whether the scene is new (always, without one)."""
    return painted([_planned_conversation(rng, text_only_probability, max_turns, pool)])[0]


def _planned_conversation(
    rng: random.Random, text_only_probability: float, max_turns: int, pool: ScenePool | None
) -> Conversation:
    if rng.random() < text_only_probability:
        return Conversation(image=None, turns=_text_only_turns(rng))
    scene = (pool or ScenePool()).scene(rng, random_scene_entities)
    return scene.conversation(image_turns(scene.entities, rng, max_turns=max_turns))


LESSON_TOPICS = ("reading", "binding", "spotting", "comparison", "checking", "existence")


def _lesson_entities(rng: random.Random, topic: str) -> list[EntitySpec]:
    if topic == "reading":
        return [random_entity(rng)]
    if topic == "binding":
        return [random_entity(rng, kind=kind) for kind in rng.sample(KINDS, rng.choice((2, 3)))]
    return random_scene_entities(rng)


def lesson(rng: random.Random, topic: str, *, pool: ScenePool | None = None) -> Conversation:
    """A short focused example that pretraining starts on, before the corpus.

    On the full corpus a language model trained from scratch learns the answer priors first and
    then ignores the image; with one thing to learn at a time the answer can only come from the
    image tokens. Topics, in the order pretraining uses them:

    - ``reading``: one entity, three of its attribute questions;
    - ``binding``: two or three entities, attribute questions about each, so the answer must
      come from the patches of the kind asked about;
    - ``spotting``: one to three entities, three ``Is there a <colour> <kind>?`` questions
      answered by first saying what the image shows (``The dog is blue. No.``, ``There is no
      cat. No.``): the one-attribute comparison, the easiest to learn (a fresh language model on
      ideal tokens: 0.94 after 300 steps);
    - ``comparison``: one to three entities, three :func:`comparison_turn` questions of any form
      (named attributes only, so what is asked is what the tower reads best);
    - ``checking``: like ``comparison``, each question answered at random either by checks
      (``The dog: red yes, plain not striped. No.``) or directly, marked with
      :data:`DIRECT_MARK`; answering half by checks taught a fresh language model the direct
      answer to mixed descriptions (0.76 after 400 steps, direct answers alone 0.54; see
      ``weights/README.md``);
    - ``existence``: one to three entities, yes/no questions about a described entity (mostly
      one attribute off when absent) and about a made-up name bound to a description, so the
      model learns to compare a description with the image, which recognition relies on.

    ``pool`` decides whether the scene is new (always, without one).
    """
    return painted([_planned_lesson(rng, topic, pool)])[0]


def _planned_lesson(rng: random.Random, topic: str, pool: ScenePool | None) -> Conversation:
    if topic not in LESSON_TOPICS:
        raise ValueError(f"topic={topic!r} is not one of {LESSON_TOPICS}")
    scene = (pool or ScenePool()).scene(rng, lambda r: _lesson_entities(r, topic))
    entities = scene.entities
    if topic == "comparison":
        turns = [comparison_turn(entities, rng, form=rng.choice(QUESTION_FORMS)) for _ in range(3)]
    elif topic == "spotting":
        turns = [comparison_turn(entities, rng, form="colour", answers="reading-first") for _ in range(3)]
    elif topic == "checking":
        turns = [
            comparison_turn(
                entities,
                rng,
                form=rng.choice(QUESTION_FORMS),
                answers=rng.choice(("direct", "checked")),
                mark_direct=True,
            )
            for _ in range(3)
        ]
    elif topic == "existence":
        turns = [_existence_turn(entities, rng) for _ in range(3)] + _named_turns(entities, rng)
    else:
        turns = [turn for entity in entities for turn in _attribute_turns(entity, rng)]
    if topic == "reading":
        turns.append(
            (
                rng.choice(("What kind of thing is in the photo?", "What is this?")),
                capitalise(f"{article(entities[0].kind)} {entities[0].kind}"),
            )
        )
    rng.shuffle(turns)
    return scene.conversation(turns[: 3 if topic == "reading" else 4])


def contrast_pair(rng: random.Random) -> tuple[Conversation, Conversation]:
    """The same yes/no questions about two photos: one where the described entity is present,
    one where it differs in exactly the attribute the description depends on.

    In one batch the pair leaves the language model no prior to fall back on: the questions are
    word for word the same and only the image decides the answer.
    """
    first, second = painted(_planned_contrast_pair(rng))
    return first, second


def _planned_contrast_pair(rng: random.Random) -> list[Conversation]:
    target = random_entity(rng)
    other = _perturb(target, rng, fine=rng.random() < 0.3)
    phrase = _describe_exactly(target, rng, fine=False, must=_changed_attribute(other, [target]))
    name = make_name(rng)
    questions = [
        rng.choice(("Is there {d}?", "Can you see {d}?", "Is {d} in the picture?")).format(d=phrase.text),
        f"{name} is {phrase.text}. "
        + rng.choice(("Is {n} in this photo?", "Is {n} in the picture?")).format(n=name),
    ]
    pair = []
    for entity in (target, other):
        company = [
            random_entity(rng, kind=k)
            for k in rng.sample(
                [k for k in KINDS if k not in (target.kind, other.kind)], rng.choice((0, 0, 1))
            )
        ]
        entities = [entity, *company]
        rng.shuffle(entities)
        plan = plan_scene(entities, rng)
        present = any(_described_by(phrase, e) for e in entities)
        answer = "Yes" if present else "No"
        pair.append(
            Conversation(image=None, turns=[(q, answer) for q in questions], entities=entities, plan=plan)
        )
    return pair


def lessons(seed: int, topic: str, fresh_share: float = 1.0, pool_size: int = 1000) -> Iterator[Conversation]:
    """An endless deterministic stream of :func:`lesson` examples on one topic; for ``contrast``,
    :func:`contrast_pair` halves one after the other. With ``fresh_share`` below 1 most examples
    ask about a recent scene again (:class:`ScenePool`; contrast pairs are always new)."""
    rng = random.Random(
        seed
        ^ {
            "reading": 0xEAD,
            "binding": 0xB1D,
            "spotting": 0x5B0,
            "comparison": 0xC3B,
            "checking": 0xC4E,
            "existence": 0xE15,
            "contrast": 0xC0,
        }[topic]
    )
    pool = ScenePool(fresh_share, size=pool_size)
    while True:
        # Planned in the stream's order, painted a chunk at a time (see PAINT_CHUNK).
        if topic == "contrast":
            chunk = [half for _ in range(PAINT_CHUNK // 2) for half in _planned_contrast_pair(rng)]
        else:
            chunk = [_planned_lesson(rng, topic, pool) for _ in range(PAINT_CHUNK)]
        yield from painted(chunk)


def conversations(seed: int, fresh_share: float = 1.0, pool_size: int = 1000) -> Iterator[Conversation]:
    """An endless deterministic stream of corpus examples; with ``fresh_share`` below 1 most
    scenes are asked about again (:class:`ScenePool`)."""
    rng = random.Random(seed)
    pool = ScenePool(fresh_share, size=pool_size)
    while True:
        yield from painted(
            [_planned_conversation(rng, TEXT_ONLY_PROBABILITY, 8, pool) for _ in range(PAINT_CHUNK)]
        )


def corpus_texts(seed: int, n: int) -> Iterator[str]:
    """Plain text of ``n`` conversations in chat form, for training the tokenizer (no rendering)."""
    rng = random.Random(seed)
    for index in range(n):
        text_only = index % 12 == 0
        turns = _text_only_turns(rng) if text_only else image_turns(random_scene_entities(rng), rng)
        yield "".join(f"USER: {q} ASSISTANT: {a}</s>" for q, a in turns)


@dataclass(frozen=True)
class EncodedConversation:
    """Token ids of one conversation (the image token already expanded) and its labels.

    ``labels`` is ``-100`` everywhere except the answer tokens (and each answer's ``</s>``).
    """

    input_ids: list[int]
    labels: list[int]
    has_image: bool


def encode_conversation(
    conversation: Conversation,
    encode: Callable[[str], list[int]],
    *,
    image_token_id: int,
    image_token_count: int,
    eos_token_id: int,
) -> EncodedConversation:
    """Tokenise ``conversation`` piece by piece in the LLaVA-1.5 chat format.

    ``encode`` maps text to ids without special tokens (``tokenizer.encode(t,
    add_special_tokens=False)``). The image placeholder becomes ``image_token_count`` copies of
    ``image_token_id``, as the processor expands it.
    """
    input_ids: list[int] = []
    labels: list[int] = []
    for index, (question, answer) in enumerate(conversation.turns):
        if index == 0 and conversation.image is not None:
            prompt_ids = (
                encode("USER: ") + [image_token_id] * image_token_count + encode(f"\n{question} ASSISTANT:")
            )
        else:
            prompt_ids = encode(f"USER: {question} ASSISTANT:")
        answer_ids = [*encode(f" {answer}"), eos_token_id]
        input_ids += prompt_ids + answer_ids
        labels += [-100] * len(prompt_ids) + answer_ids
    return EncodedConversation(input_ids=input_ids, labels=labels, has_image=conversation.image is not None)
