"""Background rendering: the same examples in the same order, and failures that surface."""

import itertools
import os
import random
from collections.abc import Iterator

import pytest

from personalization.toyworld.corpus import conversations, lessons
from personalization.toyworld.prefetch import Prefetched, PrefetchError
from personalization.toyworld.vision_warmup import VisionWarmupConfig, later_scenes


def _failing(after: int) -> Iterator[int]:
    yield from range(after)
    raise ValueError("the renderer broke")


def _dying(code: int) -> Iterator[int]:
    os._exit(code)
    yield 0


def _scheduling() -> Iterator[int]:
    yield os.sched_getscheduler(0)


def _signature(example):  # type: ignore[no-untyped-def]
    image = None if example.image is None else example.image.tobytes()
    return example.turns, image


@pytest.mark.parametrize("source", [(conversations, 5), (lessons, 5, "binding")])
def test_a_background_stream_yields_what_the_generator_yields_in_order(source) -> None:  # type: ignore[no-untyped-def]
    factory, *args = source
    with Prefetched(factory, *args, depth=4) as stream:
        background = [_signature(example) for example in itertools.islice(stream, 12)]
    inline = [_signature(example) for example in itertools.islice(factory(*args), 12)]
    assert background == inline


def test_a_finite_stream_ends_and_stops_its_process() -> None:
    stream = Prefetched(range, 3)
    assert list(stream) == [0, 1, 2]
    assert list(stream) == []
    stream.close()


def test_an_error_in_the_background_is_raised_with_its_cause() -> None:
    with Prefetched(_failing, 2) as stream:
        assert [next(stream), next(stream)] == [0, 1]
        with pytest.raises(PrefetchError, match="the renderer broke"):
            next(stream)


def test_a_dead_background_process_is_reported_not_waited_for() -> None:
    with Prefetched(_dying, 3) as stream, pytest.raises(PrefetchError, match=r"died \(exit code 3\)"):
        next(stream)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling class only")
def test_the_background_process_renders_at_idle_priority() -> None:
    # On 2 cores a renderer at the training threads' priority takes their time slices.
    with Prefetched(_scheduling) as stream:
        assert next(stream) == os.SCHED_IDLE


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        Prefetched(range, 3, depth=0)


def test_the_towers_fresh_and_held_out_scenes_are_the_same_in_the_background() -> None:
    config = VisionWarmupConfig(steps=3, batch_size=4, pool_size=8, fresh_per_step=2)
    state = random.Random(7).getstate()

    def signature(item):  # type: ignore[no-untyped-def]
        images, labels, counts = item
        return [image.tobytes() for image in images], labels.tobytes(), counts.tobytes()

    with Prefetched(later_scenes, state, config, 12) as stream:
        background = [signature(item) for item in stream]
    inline = [signature(item) for item in later_scenes(state, config, 12)]
    assert len(inline) == config.steps + 1  # a batch of fresh scenes per step, then the held-out ones
    assert background == inline
