"""The shipped toy-world model loads offline and answers generic questions about the world."""

import random

import pytest
import torch

from personalization.modeling import TOYWORLD_WEIGHTS_DIR, load_model
from personalization.toyworld.pretrain import answer
from personalization.toyworld.world import KINDS, random_entity, render_scene

pytestmark = pytest.mark.skipif(
    not (TOYWORLD_WEIGHTS_DIR / "config.json").is_file(),
    reason=f"toy-world weights are not shipped in {TOYWORLD_WEIGHTS_DIR}",
)

MAX_SHIPPED_BYTES = 30 * 1024 * 1024


def test_shipped_weights_are_small() -> None:
    total = sum(path.stat().st_size for path in TOYWORLD_WEIGHTS_DIR.rglob("*") if path.is_file())
    assert total <= MAX_SHIPPED_BYTES


def test_yes_and_no_are_single_tokens() -> None:
    loaded = load_model("toyworld", device="cpu", dtype=torch.float32)
    tokenizer = loaded.processor.tokenizer
    assert len(tokenizer.encode(" Yes", add_special_tokens=False)) == 1
    assert len(tokenizer.encode(" No", add_special_tokens=False)) == 1


def test_loads_by_name_and_reads_the_colour_of_a_lone_entity() -> None:
    loaded = load_model("toyworld", device="cpu", dtype=torch.float32)
    rng = random.Random(2024)
    right = 0
    for kind in KINDS:
        entity = random_entity(rng, kind=kind)
        image = render_scene([entity], rng)
        right += answer(loaded, image, f"What colour is the {entity.kind}?").lower() == entity.colour
    assert right >= len(KINDS) - 1


def test_tells_apart_the_colours_of_two_entities() -> None:
    """Binding: asked about one kind in a two-entity scene, the answer is that entity's colour.
    These 72 questions: shipped weights 60 right, the seventh session's 54, the weights shipped
    before binding lessons 46 (a model that does not bind answers about either entity at random)."""
    loaded = load_model("toyworld", device="cpu", dtype=torch.float32)
    rng = random.Random(2024)
    right = 0
    for _ in range(36):
        entities = [random_entity(rng, kind=kind) for kind in rng.sample(KINDS, 2)]
        image = render_scene(entities, rng)
        for entity in entities:
            right += answer(loaded, image, f"What colour is the {entity.kind}?").lower() == entity.colour
    assert right >= 50


def test_answers_existence_questions_by_the_image() -> None:
    """Comparison, which recognition rests on: asked in the form the model answers directly (its
    ``yes_no_suffix``), "Is there a <colour> <kind>?" is "Yes" for the entity shown and "No" for
    another kind of that colour. Shipped weights (fifteenth session): 21 of these 24 right. The
    bare "Is there a <kind>?", which no lesson asks, fell to 15 (3 of 12 "Yes" when the kind is
    there; 24 and 17 with stage seeds 1 and 2; the thirteenth session's weights 20), see
    ``benchmarks/results/finishing_recipes.json``. Chance is 12; 18 or more by chance has p < 0.02."""
    loaded = load_model("toyworld", device="cpu", dtype=torch.float32)
    mark = loaded.conventions.yes_no_suffix
    rng = random.Random(2024)
    right = 0
    for offset in (3, 4):
        for index, kind in enumerate(KINDS):
            entity = random_entity(rng, kind=kind)
            image = render_scene([entity], rng)
            absent = KINDS[(index + offset) % len(KINDS)]
            for question, truth in (
                (f"Is there a {entity.colour} {kind}?", "Yes"),
                (f"Is there a {entity.colour} {absent}?", "No"),
            ):
                said = answer(loaded, image, question + mark).split()
                right += bool(said) and said[0].strip(".,") == truth
    assert right >= 18
