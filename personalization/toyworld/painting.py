"""Painting planned scenes on several cores at once, while training waits for them.

Rendering a scene is planning it (every random draw, in the stream's order: cheap) and painting
it (Pillow and numpy: most of the cost; see :func:`~personalization.toyworld.world.plan_scene`).
In pretraining the model waits while its examples are rendered, and one core then sits idle:
measured on the twenty-second session's AMD EPYC, rendering was about a fifth of a language step
and a third of a tower step. Inside :func:`parallel_painting`, :func:`paint_scenes` paints a
batch of plans on the calling thread and on worker processes together. The pixels are the same
either way, because a plan holds every random choice; only the time differs.

Rendering *ahead* in background processes (:mod:`~personalization.toyworld.prefetch`) did not
pay on 2 cores: the renderers took their time from the training threads. Painting here happens
only while training waits, so it uses the idle core instead.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
from PIL import Image

from personalization.toyworld.world import ScenePlan, paint_scene

Painted = tuple[Image.Image, np.ndarray]

_workers: ProcessPoolExecutor | None = None
_painters = 1


def _paint_all(plans: Sequence[ScenePlan]) -> list[Painted]:
    return [paint_scene(plan) for plan in plans]


def paint_scenes(plans: Sequence[ScenePlan]) -> list[Painted]:
    """The image and owner map of every plan, in order; on ``painters`` cores inside
    :func:`parallel_painting`, in line otherwise.

    Example:
        >>> import random
        >>> from personalization.toyworld.world import EntitySpec, plan_scene, render_scene_with_owners
        >>> plan = plan_scene([EntitySpec("dog", "red", "striped", "hat")], random.Random(0))
        >>> image, owners = paint_scenes([plan])[0]
        >>> image.tobytes() == render_scene_with_owners([EntitySpec("dog", "red", "striped", "hat")],
        ...                                             random.Random(0))[0].tobytes()
        True
    """
    if _workers is None or len(plans) < 2:
        return _paint_all(plans)
    # Equal shares; the calling thread paints the first while the workers paint the others.
    bounds = np.linspace(0, len(plans), _painters + 1).round().astype(int)
    shares = [plans[start:end] for start, end in itertools.pairwise(bounds)]
    futures: list[Future[list[Painted]]] = [_workers.submit(_paint_all, share) for share in shares[1:]]
    painted = _paint_all(shares[0])
    for future in futures:
        painted += future.result()
    return painted


@contextlib.contextmanager
def parallel_painting(painters: int) -> Iterator[None]:
    """Within the block, :func:`paint_scenes` paints on ``painters`` cores: the calling thread
    and ``painters - 1`` worker processes (started here, stopped on leaving). ``painters=1``
    changes nothing. Blocks do not nest.
    """
    global _workers, _painters
    if painters < 1:
        raise ValueError(f"painters={painters} must be at least 1")
    if _workers is not None:
        raise RuntimeError("parallel_painting blocks do not nest")
    if painters == 1:
        yield
        return
    # Spawned, not forked: a forked copy of a process running PyTorch's threads can deadlock.
    workers = ProcessPoolExecutor(painters - 1, mp_context=multiprocessing.get_context("spawn"))
    _workers, _painters = workers, painters
    try:
        yield
    finally:
        _workers, _painters = None, 1
        workers.shutdown(cancel_futures=True)
