"""Scenes planned in order and painted on several cores: the same pixels as rendering in line."""

import itertools
import random

import numpy as np
import pytest

from personalization.toyworld import painting
from personalization.toyworld.corpus import conversations, lessons
from personalization.toyworld.painting import paint_scenes, parallel_painting
from personalization.toyworld.vision_warmup import render_scenes
from personalization.toyworld.world import (
    KINDS,
    paint_scene,
    plan_scene,
    random_entity,
    render_scene_with_owners,
)


def _scenes(seed: int, count: int) -> list[list]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    return [
        [random_entity(rng, kind=k) for k in rng.sample(KINDS, rng.choice((1, 2, 3)))] for _ in range(count)
    ]


def _bytes(painted) -> list[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
    return [(image.tobytes(), owners.tobytes()) for image, owners in painted]


def _stream(examples) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return [
        (
            c.turns,
            None if c.image is None else c.image.tobytes(),
            None if c.owners is None else c.owners.tobytes(),
        )
        for c in examples
    ]


def test_a_plan_draws_what_rendering_draws_and_paints_its_pixels() -> None:
    planned, rendered = random.Random(4), random.Random(4)
    for entities in _scenes(1, 12):
        plan = plan_scene(entities, planned, occlusion_probability=0.5)
        image, owners = render_scene_with_owners(entities, rendered, occlusion_probability=0.5)
        assert planned.getstate() == rendered.getstate()
        painted_image, painted_owners = paint_scene(plan)
        assert painted_image.tobytes() == image.tobytes()
        assert np.array_equal(painted_owners, owners)


def test_painting_on_two_cores_gives_the_same_scenes_in_order() -> None:
    rng = random.Random(7)
    plans = [plan_scene(entities, rng) for entities in _scenes(2, 9)]
    in_line = paint_scenes(plans)
    with parallel_painting(2):
        assert painting._workers is not None
        parallel = paint_scenes(plans)
    assert painting._workers is None
    assert _bytes(parallel) == _bytes(in_line)


def test_streams_and_tower_scenes_are_the_same_painted_in_parallel() -> None:
    def draw() -> tuple[list, list, list, tuple]:  # type: ignore[type-arg]
        corpus = _stream(itertools.islice(conversations(3), 40))
        binding = _stream(itertools.islice(lessons(3, "binding"), 40))
        contrast = _stream(itertools.islice(lessons(3, "contrast"), 6))
        images, labels, counts = render_scenes(random.Random(5), 10, 0.7, 12)
        return corpus, binding, contrast, ([i.tobytes() for i in images], labels.tolist(), counts.tolist())

    in_line = draw()
    with parallel_painting(2):
        parallel = draw()
    assert parallel == in_line


def test_parallel_painting_rejects_nesting_and_a_count_below_one() -> None:
    with pytest.raises(ValueError, match="painters"), parallel_painting(0):
        pass
    with parallel_painting(2), pytest.raises(RuntimeError, match="nest"), parallel_painting(2):
        pass
    assert painting._workers is None
